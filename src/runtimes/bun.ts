/// <reference types="bun" />
/**
 * The Bun entry: serves the prepared app (src/runtimes/server.ts) with Bun.serve, same PORT/HOST convention as
 * Node, and drains on SIGTERM/SIGINT. `npm run start:bun` or `bun src/runtimes/bun.ts`.
 */
import { bunServeOptions, loadListen, tlsStartError } from './listen.ts';
import { drainOnSignals, prepare, runEntry, StartError } from './server.ts';

export async function startBun(env: Record<string, string | undefined>) {
  const options = bunServeOptions(loadListen(env));
  // Bun.serve passes itself as the app's env: it knows each request's peer address.
  const prepared = await prepare(env, 'bun', {
    clientIp: (request, env) => (env as Bun.Server<undefined> | undefined)?.requestIP(request)?.address,
  });
  const { config, logger, app } = prepared;
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ fetch: app.fetch, port: config.port, hostname: config.host, ...options });
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      throw new StartError(`${config.host}:${config.port} is already in use; set PORT to another port.`);
    }
    if (options.tls) throw tlsStartError(err);
    throw err;
  }
  logger.log('info', 'listening', { url: `${options.tls ? 'https' : 'http'}://${config.host}:${server.port}`, baseUrl: config.baseUrl, runtime: 'bun', role: config.role });
  const shutdown = drainOnSignals(prepared, {
    stop: () => server.stop(false),
    stopNow: () => void server.stop(true),
  });
  return { server, port: server.port, shutdown };
}

if (import.meta.main) await runEntry(() => startBun(process.env));
