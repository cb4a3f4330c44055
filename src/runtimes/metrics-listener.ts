/**
 * The separate listener of HOP_METRICS_ADDR (Node and Bun): `GET|HEAD /metrics` in the Prometheus text format, and
 * 404 problem+json for anything else. It serves a single process's metrics, or with HOP_WORKERS the whole host's,
 * from the supervisor. Meant for an address only the scraper reaches (loopback, a pod's port behind a
 * NetworkPolicy); the main port then answers /metrics 404.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../platform/logger.ts';
import { StartError } from './server.ts';

export interface MetricsListener {
  server: Server;
  port: number;
  close(): Promise<void>;
}

const problem = (status: number, title: string, detail: string) =>
  JSON.stringify({ type: 'about:blank', title, status, detail, instance: crypto.randomUUID() });

export function listenForMetrics(address: { host: string; port: number }, render: () => string | Promise<string>, logger: Logger): Promise<MetricsListener> {
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (path !== '/metrics') return send(404, 'application/problem+json', problem(404, 'Not Found', `Nothing at ${req.method} ${path}; this listener serves /metrics.`));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(405, 'application/problem+json', problem(405, 'Method Not Allowed', `${req.method} is not allowed here; use GET, HEAD.`));
    }
    Promise.resolve()
      .then(render)
      .then(
        (text) => send(200, 'text/plain; version=0.0.4; charset=utf-8', text),
        (err: unknown) => {
          logger.log('error', 'metrics not rendered', { error: err instanceof Error ? err.message : String(err) });
          send(500, 'application/problem+json', problem(500, 'Internal Server Error', 'The metrics could not be gathered.'));
        },
      );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES'
          ? new StartError(`HOP_METRICS_ADDR: cannot listen on ${address.host}:${address.port} (${err.code}).`)
          : err,
      ),
    );
    server.listen(address.port, address.host, () => {
      const port = (server.address() as AddressInfo).port;
      logger.log('info', 'metrics listening', { url: `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${port}/metrics` });
      resolve({
        server,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
