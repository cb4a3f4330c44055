/**
 * A diagnostic target: the smallest Hono app served through @hono/node-server, answering `GET /:slug` with a
 * fixed 302. Between the bare node:http row and hop's row it isolates the cost of the Request/Response
 * adapter and the router from the cost of hop's middleware and its database read.
 * Usage: PORT=<port> HOST=127.0.0.1 node bench/hono-302.ts
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const port = Number(process.env.PORT ?? 8789);
const hostname = process.env.HOST ?? '127.0.0.1';

const app = new Hono().get('/:slug', (c) => c.body(null, 302, { location: 'https://example.com/' }));

const server = serve({ fetch: app.fetch, port, hostname }, () =>
  console.log(`hono 302 server on http://${hostname}:${port}`),
);
process.once('SIGTERM', () => server.close(() => process.exit(0)));
