/// <reference types="bun" />
/**
 * The Bun entry: serves the prepared app (src/runtimes/server.ts) with Bun.serve, same PORT/HOST convention as
 * Node, and drains on SIGTERM/SIGINT. `npm run start:bun` or `bun src/runtimes/bun.ts`; with HOP_WORKERS > 1, the
 * supervisor of cluster.ts over that many Bun processes, each listening with reusePort.
 */
import { bunServeOptions, loadListen, tlsStartError } from './listen.ts';
import cluster from 'node:cluster';
import { loadServerConfig } from '../config.ts';
import { supervise, workerCount } from './cluster.ts';
import { awaitTurn, joinSupervisor, serveUnder } from './cluster-worker.ts';
import { drainOnSignals, prepare, runEntry, StartError } from './server.ts';

/**
 * A worker's answers during its drain say `Connection: close`, so that keep-alive clients reconnect (to another
 * worker) instead of sending their next request on a connection about to close.
 */
function closingWhileDraining(fetch: (request: Request, server: Bun.Server<undefined>) => Response | Promise<Response>, draining: () => boolean) {
  const close = (res: Response) => {
    const closing = new Response(res.body, res);
    closing.headers.set('connection', 'close');
    return closing;
  };
  return (request: Request, server: Bun.Server<undefined>) => {
    const res = fetch(request, server);
    if (!draining()) return res;
    return res instanceof Promise ? res.then(close) : close(res);
  };
}

export async function startBun(env: Record<string, string | undefined>) {
  const options = bunServeOptions(loadListen(env));
  // A worker of HOP_WORKERS > 1 (cluster.ts): the host's state is its supervisor's.
  const supervisor = cluster.isWorker ? joinSupervisor() : undefined;
  // Bun.serve passes itself as the app's env: it knows each request's peer address.
  const prepared = await prepare(env, 'bun', {
    clientIp: (request, env) => (env as Bun.Server<undefined> | undefined)?.requestIP(request)?.address,
    host: supervisor?.provided,
  });
  const { config, logger, app } = prepared;
  if (supervisor && !(await awaitTurn(supervisor))) {
    await prepared.close();
    process.exit(0);
  }
  let server: ReturnType<typeof Bun.serve>;
  try {
    // Workers each listen on the port (SO_REUSEPORT): the kernel spreads connections over them.
    server = Bun.serve({
      fetch: supervisor ? closingWhileDraining(app.fetch, prepared.isDraining) : app.fetch,
      port: config.port,
      hostname: config.host,
      reusePort: !!supervisor,
      ...options,
    });
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
  if (supervisor) await serveUnder(supervisor, shutdown);
  return { server, port: server.port, shutdown };
}

/** One process, or with HOP_WORKERS > 1 a supervisor of that many (cluster.ts). */
const main = (env: Record<string, string | undefined>) =>
  runEntry(() => (cluster.isPrimary && workerCount(loadServerConfig(env)) > 1 ? supervise(env) : startBun(env)));

if (import.meta.main) await main(process.env);
