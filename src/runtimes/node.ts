/**
 * The Node entry: serves the prepared app (src/runtimes/server.ts) with @hono/node-server and drains on
 * SIGTERM/SIGINT. Run directly (`node src/runtimes/node.ts`) or through `hop serve` / `npm start`.
 */
import { getRequestListener, RequestError } from '@hono/node-server';
import cluster from 'node:cluster';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { unparsableRequest } from '../http/unparsable-request.ts';
import { loadServerConfig } from '../config.ts';
import { supervise, workerCount } from './cluster.ts';
import { awaitTurn, joinSupervisor, serveUnder } from './cluster-worker.ts';
import { createNodeServer, loadListen } from './listen.ts';
import { drainOnSignals, prepare, runEntry, StartError } from './server.ts';

export { announceKey, StartError } from './server.ts';

export async function startNode(env: Record<string, string | undefined>) {
  const listen = loadListen(env);
  // A worker of `hop serve --workers N` (cluster.ts): the host's state is its supervisor's.
  const supervisor = cluster.isWorker ? joinSupervisor() : undefined;
  // @hono/node-server passes the request's IncomingMessage as the app's env: the socket's peer is the client.
  const prepared = await prepare(env, 'node', {
    clientIp: (_request, env) => (env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress,
    host: supervisor?.provided,
  });
  const { config, logger, app } = prepared;
  // The supervisor's standby waits here, composed, until a worker dies (or the supervisor does: then it just stops).
  if (supervisor && !(await awaitTurn(supervisor))) {
    await prepared.close();
    process.exit(0);
  }
  const server = await new Promise<ReturnType<typeof createNodeServer>>((resolve, reject) => {
    // What serve() does, plus an errorHandler (serve() passes none): a request the adapter cannot turn into a
    // Request (a malformed Host) is answered as problem+json instead of a bare 400.
    const listener = getRequestListener(app.fetch, {
      hostname: config.host,
      errorHandler: (err) => unparsableRequest(err instanceof RequestError),
    });
    // Draining, each answer closes its connection: a keep-alive client reconnects (to another worker) instead of
    // sending its next request on a connection about to close.
    const s = createNodeServer(
      (req, res) => {
        if (prepared.isDraining() && 'shouldKeepAlive' in res) res.shouldKeepAlive = false;
        return listener(req, res);
      },
      listen,
      logger,
    );
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
  if (supervisor) await serveUnder(supervisor, shutdown);
  return { server, port: address.port, shutdown };
}

/** `hop serve`: one process, or with HOP_WORKERS > 1 a supervisor of that many (cluster.ts). */
export const main = (env: Record<string, string | undefined> = process.env) =>
  runEntry(() => (cluster.isPrimary && workerCount(loadServerConfig(env)) > 1 ? supervise(env) : startNode(env)));

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
