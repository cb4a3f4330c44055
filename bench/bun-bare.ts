/// <reference types="bun" />
/**
 * A diagnostic target: Bun.serve answering every request with the same 302, the ceiling of Bun's HTTP stack on
 * this machine, so hop's Bun row can be read against Bun itself as well as against bare node:http.
 * Usage: PORT=<port> HOST=127.0.0.1 bun bench/bun-bare.ts
 */
const port = Number(process.env.PORT ?? 8791);
const hostname = process.env.HOST ?? '127.0.0.1';

const server = Bun.serve({
  port,
  hostname,
  fetch: () => new Response(null, { status: 302, headers: { location: 'https://example.com/' } }),
});

console.log(`bun bare 302 server on http://${hostname}:${server.port}`);
process.once('SIGTERM', () => void server.stop(true).then(() => process.exit(0)));
