/**
 * The benchmark's baseline: a bare node:http server answering every request with the same 302, so the
 * harness can tell what part of hop's cost is Node's HTTP stack and what part is hop itself.
 * Usage: PORT=<port> HOST=127.0.0.1 node bench/bare.ts
 */
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8788);
const host = process.env.HOST ?? '127.0.0.1';

const server = createServer((_req, res) => {
  res.writeHead(302, { location: 'https://example.com/' });
  res.end();
});

server.listen(port, host, () => console.log(`bare 302 server on http://${host}:${port}`));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
