/**
 * A diagnostic target: the smallest Hono app that reads the target from the seeded libSQL file with a statement
 * prepared once, answering `GET /:slug` with a 302. It measures, in the same run, the ceiling of "one database
 * read per redirect" on this machine: hop's row can approach it but not pass it.
 * Usage: PORT=<port> HOST=127.0.0.1 HOP_DATABASE_URL=file:<db> node bench/hono-libsql.ts
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import Database from 'libsql';

const port = Number(process.env.PORT ?? 8790);
const hostname = process.env.HOST ?? '127.0.0.1';
const file = (process.env.HOP_DATABASE_URL ?? '').replace(/^file:/, '');

const byDomainSlug = new Database(file, { readonly: true })
  .prepare('select url from links where slug = ? and domain = ?')
  .raw(true);

const app = new Hono().get('/:slug', (c) => {
  const row = byDomainSlug.get(c.req.param('slug'), 'localhost') as [string] | undefined;
  if (!row) return c.body(null, 404);
  return new Response(null, { status: 302, headers: { location: row[0], 'content-length': '0' } });
});

const server = serve({ fetch: app.fetch, port, hostname }, () =>
  console.log(`hono + libSQL read server on http://${hostname}:${port}`),
);
process.once('SIGTERM', () => server.close(() => process.exit(0)));
