// Hostile clients against real Node and Bun processes: a slow request head and a stalled body are cut off within
// the configured timeouts, 5,000 idle connections from one address do not keep another address from being served
// (Node caps connections per address and in total, and logs what it refuses a few lines per flood), an oversized
// chunked body gets its 413 and leaves the client's next request working, and an aborted upload is logged as the
// client's doing (499, no error, no stack), not as a server fault. Pipelining: Node answers in order; Bun, behind an
// asynchronous handler, not at all (documented).
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startProcess } from '../support/process.ts';

const BUN = 'node_modules/.bin/bun';
const runtimes = [
  { name: 'Node', command: process.execPath, args: ['src/runtimes/node.ts'] },
  { name: 'Bun', command: BUN, args: ['src/runtimes/bun.ts'] },
] as const;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(command: string, args: readonly string[], env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hop-hostile-'));
  dirs.push(dir);
  const port = await freePort();
  const hop = await startProcess(
    command,
    [...args],
    {
      PORT: String(port),
      HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
      HOP_SHUTDOWN_DELAY_MS: '0',
      HOP_LOG_LEVEL: 'info',
      HOP_BODY_LIMIT_BYTES: '65536',
      ...env,
    },
    `http://127.0.0.1:${port}`,
    30_000,
  );
  const key = /export HOP_KEY=(\S+)/.exec(hop.output())![1]!;
  return { hop, port, key };
}

interface Opened {
  socket: Socket;
  /** Resolves when the server closes the connection: how long after `since` it was, and what the server sent. */
  closed: Promise<{ afterMs: number; received: string }>;
}

/** A raw connection from `localAddress` that sends `head` once connected. */
function open(port: number, head: string, localAddress = '127.0.0.1'): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    let received = '';
    let since = 0;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (received += d));
    const closed = new Promise<{ afterMs: number; received: string }>((done) => {
      socket.on('close', () => done({ afterMs: Date.now() - since, received }));
    });
    socket.on('error', () => {});
    socket.once('connect', () => {
      since = Date.now();
      if (head) socket.write(head);
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });
}

/** GET /livez from `localAddress` on a fresh connection: its status, or the error's code. */
function livez(port: number, localAddress: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/livez', localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.setTimeout(5000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

const linesOf = (output: string) =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('slow clients on Node', () => {
  let server: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    server = await start(process.execPath, runtimes[0].args, { HOP_HEADERS_TIMEOUT_MS: '1000', HOP_REQUEST_TIMEOUT_MS: '2000' });
  }, 40_000);
  afterAll(() => server?.hop.stop());

  it('closes a connection whose request head is unfinished after HOP_HEADERS_TIMEOUT_MS (checked every second)', async () => {
    const { closed } = await open(server.port, 'GET /livez HTTP/1.1\r\nHost: x\r\n');
    const { afterMs, received } = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(afterMs).toBeGreaterThanOrEqual(900);
    expect(afterMs).toBeLessThan(1000 + 1000 + 1000);
    // A connection that never sends a byte is a slow head too.
    const silent = await open(server.port, '');
    expect((await silent.closed).afterMs).toBeLessThan(3000);
  });

  it('closes a connection whose body stalls after HOP_REQUEST_TIMEOUT_MS', async () => {
    const head = `POST /v1/links HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"url":`;
    const { closed } = await open(server.port, head);
    const { afterMs, received } = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(afterMs).toBeGreaterThanOrEqual(1900);
    expect(afterMs).toBeLessThan(2000 + 1000 + 1000);
  });
});

describe('slow clients on Bun', () => {
  let server: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    server = await start(BUN, runtimes[1].args, { HOP_HEADERS_TIMEOUT_MS: '2000' });
  }, 40_000);
  afterAll(() => server?.hop.stop());

  it('closes an unfinished or absent head after its own fixed bound (about 10 s, whatever idleTimeout says)', async () => {
    const slow = await open(server.port, 'GET /livez HTTP/1.1\r\nHost: x\r\n');
    const silent = await open(server.port, '');
    for (const { closed } of [slow, silent]) {
      const { afterMs, received } = await closed;
      expect(received).toBe('');
      expect(afterMs).toBeLessThan(15_000);
    }
  }, 20_000);

  it('closes an idle keep-alive connection after idleTimeout (HOP_HEADERS_TIMEOUT_MS in seconds), within twice that', async () => {
    const { closed } = await open(server.port, 'GET /livez HTTP/1.1\r\nHost: x\r\n\r\n');
    const { afterMs, received } = await closed;
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(afterMs).toBeGreaterThanOrEqual(1900);
    expect(afterMs).toBeLessThan(2 * 2000 + 1000);
  });
});

describe.each(runtimes)('a flood of idle connections on $name', ({ name, command, args }) => {
  const FLOOD = 5000;
  let server: Awaited<ReturnType<typeof start>>;
  const flood: Opened[] = [];
  beforeAll(async () => {
    server = await start(command, args);
  }, 40_000);
  afterAll(async () => {
    flood.forEach((o) => o.socket.destroy());
    await server?.hop.stop();
  });

  it('keeps serving another address while one holds 5,000 idle connections', async () => {
    for (let i = 0; i < FLOOD; i += 250) {
      const batch = await Promise.allSettled(Array.from({ length: 250 }, () => open(server.port, '')));
      for (const r of batch) if (r.status === 'fulfilled') flood.push(r.value);
    }
    await sleep(300);
    const stillOpen = flood.filter((o) => !o.socket.destroyed).length;
    expect(await livez(server.port, '127.0.0.2')).toBe(200);
    if (name === 'Node') {
      // The default cap, HOP_MAX_CONNECTIONS_PER_ADDRESS=1000: the rest were closed at once, and so is the next one.
      // (Less the connections this test process already holds to the server: the readiness probe's keep-alive.)
      expect(stillOpen).toBeLessThanOrEqual(1000);
      expect(stillOpen).toBeGreaterThanOrEqual(995);
      expect(await livez(server.port, '127.0.0.1')).not.toBe(200);
      const refusals = linesOf(server.hop.output()).filter((l) => l.msg === 'connections refused');
      // Thousands refused, one line logged at once (the rest are summed up in one line ten seconds later, which a
      // slow run may already show).
      expect(refusals.length).toBeGreaterThanOrEqual(1);
      expect(refusals.length).toBeLessThanOrEqual(2);
      expect(refusals[0]).toMatchObject({ level: 'warn', refused: { 'per address': 1 }, addresses: ['127.0.0.1'] });
    } else {
      // Bun has no connection cap: it holds them all and still serves.
      expect(stillOpen).toBe(FLOOD);
    }
  }, 60_000);
});

describe('the total connection cap on Node', () => {
  let server: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    server = await start(process.execPath, runtimes[0].args, { HOP_MAX_CONNECTIONS: '20' });
  }, 40_000);
  afterAll(() => server?.hop.stop());

  it('closes connections past HOP_MAX_CONNECTIONS at once and logs it', async () => {
    const held = await Promise.all(Array.from({ length: 20 }, (_, i) => open(server.port, '', `127.0.0.${10 + (i % 5)}`)));
    await sleep(200);
    expect(await livez(server.port, '127.0.0.2')).not.toBe(200);
    held.forEach((o) => o.socket.destroy());
    await Promise.all(held.map((o) => o.closed));
    await sleep(200);
    expect(await livez(server.port, '127.0.0.2')).toBe(200);
    const refusals = linesOf(server.hop.output()).filter((l) => l.msg === 'connections refused');
    expect(refusals[0]).toMatchObject({ refused: { 'in total': 1 } });
  });
});

describe.each(runtimes)('request bodies cut short or too large on $name', ({ name, command, args }) => {
  let server: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    server = await start(command, args);
  }, 40_000);
  afterAll(() => server?.hop.stop());

  const oversizedChunked = (key: string) =>
    `POST /v1/links HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
    `10000\r\n${'x'.repeat(0x10000)}\r\n`.repeat(4);

  it('answers an oversized chunked body with 413, and the client\'s next request works', async () => {
    // node:http's client, one keep-alive connection at most: the 413, then the next request.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, path: string, body?: Uint8Array) =>
      new Promise<{ status: number; connection: string | undefined; ms: number }>((resolve, reject) => {
        const t0 = Date.now();
        const req = httpRequest({ host: '127.0.0.1', port: server.port, method, path, agent, headers: { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, ms: Date.now() - t0 }));
        });
        req.on('error', reject);
        if (body) for (let i = 0; i < 16; i++) req.write(body);
        req.end();
      });
    const big = await send('POST', '/v1/links', new Uint8Array(0x10000).fill(120));
    expect(big.status).toBe(413);
    if (name === 'Node') expect(big.connection).toBe('close');
    const next = await send('GET', '/livez');
    expect(next.status).toBe(200);
    if (name === 'Node') expect(next.ms).toBeLessThan(1000);
    agent.destroy();

    if (name === 'Node') {
      // On the wire: the answer says close, and the server does close, after the answer, without a reset.
      const raw = await open(server.port, oversizedChunked(server.key));
      const { received, afterMs } = await raw.closed;
      expect(received).toMatch(/^HTTP\/1\.1 413 /);
      expect(received).toMatch(/\r\nconnection: close\r\n/i);
      expect(afterMs).toBeLessThan(3000);
    }
  }, 30_000);

  it('logs an aborted upload as the client\'s doing: 499, no error, no stack', async () => {
    const before = server.hop.output().length;
    const heads = [
      `POST /v1/links HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.key}\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n{"url":"`,
      `POST /v1/links HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n${'x'.repeat(2000)}`,
    ];
    for (const head of heads) {
      const { socket, closed } = await open(server.port, head);
      await sleep(300);
      socket.destroy();
      await closed;
    }
    await sleep(500);
    const output = server.hop.output().slice(before);
    const lines = linesOf(output);
    expect(lines.filter((l) => l.msg === 'request' && l.path === '/v1/links').map((l) => l.status)).toEqual([499, 499]);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    expect(output).not.toMatch(/stack|\n\s+at /);
  });
});

describe.each(runtimes)('pipelined requests on $name', ({ name, command, args }) => {
  let server: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    server = await start(command, args);
  }, 40_000);
  afterAll(() => server?.hop.stop());

  it(name === 'Node' ? 'answers them in order' : 'leaves them unanswered behind an asynchronous handler (upstream Bun issue, docs/architecture.md)', async () => {
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.key}\r\n\r\n`;
    const { socket, closed } = await open(server.port, get('/v1/workspace') + get('/nope-1') + get('/livez'));
    await sleep(2000);
    socket.destroy();
    const statuses = [...(await closed).received.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => Number(m[1]));
    // When a Bun release answers them, this fails: then say so in docs/architecture.md, "Bun and pipelining".
    expect(statuses).toEqual(name === 'Node' ? [200, 404, 200] : []);
  });
});
