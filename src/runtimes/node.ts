/**
 * The Node entry: serves the prepared app (src/runtimes/server.ts) with @hono/node-server and drains on
 * SIGTERM/SIGINT. Run directly (`node src/runtimes/node.ts`) or through `hop serve` / `npm start`.
 */
import { getRequestListener, RequestError } from '@hono/node-server';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { unparsableRequest } from '../http/unparsable-request.ts';
import { createNodeServer, loadListen } from './listen.ts';
import { drainOnSignals, prepare, runEntry, StartError } from './server.ts';

export { announceKey, StartError } from './server.ts';

export async function startNode(env: Record<string, string | undefined>) {
  const listen = loadListen(env);
  // @hono/node-server passes the request's IncomingMessage as the app's env: the socket's peer is the client.
  const prepared = await prepare(env, 'node', {
    clientIp: (_request, env) => (env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress,
  });
  const { config, logger, app } = prepared;
  const server = await new Promise<ReturnType<typeof createNodeServer>>((resolve, reject) => {
    // What serve() does, plus an errorHandler (serve() passes none): a request the adapter cannot turn into a
    // Request (a malformed Host) is answered as problem+json instead of a bare 400.
    const listener = getRequestListener(app.fetch, {
      hostname: config.host,
      errorHandler: (err) => unparsableRequest(err instanceof RequestError),
    });
    const s = createNodeServer(listener, listen, logger);
    s.listen(config.port, config.host, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new StartError(`${config.host}:${config.port} is already in use; set PORT to another port.`)
          : err,
      ),
    );
  });
  const address = server.address() as AddressInfo;
  logger.log('info', 'listening', { url: `${listen.pem ? 'https' : 'http'}://${config.host}:${address.port}`, baseUrl: config.baseUrl, runtime: 'node', role: config.role });
  const shutdown = drainOnSignals(prepared, {
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    stopNow: () => (server as { closeAllConnections?: () => void }).closeAllConnections?.(),
  });
  return { server, port: address.port, shutdown };
}

export const main = (env: Record<string, string | undefined> = process.env) => runEntry(() => startNode(env));

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
