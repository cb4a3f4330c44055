// hop with HOP_QUEUE=redis as separate processes, on Node and on Bun: the server only produces (HOP_CLICK_CONSUMER=off)
// to a real redis-server behind the Upstash REST stand-in, and `hop consume` processes store the clicks. N redirects
// give exactly N clicks, also when the consumer is frozen with entries in hand, killed with SIGKILL, and a new one
// started: it takes the dead one's pending entries over (XAUTOCLAIM) and stores them once.
import Database from 'libsql';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startProcess } from '../support/process.ts';
import { redisAvailable, startRedis, type RedisServer } from '../support/redis.ts';
import { startUpstashRest, type UpstashRest } from '../support/upstash-rest.ts';
import { createClickLink, type ClickLink } from '../support/click-link.ts';

const ADMIN = 'r'.repeat(40);
const BROWSER = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dirs: string[] = [];
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const runtimes = [
  { name: 'Node', command: 'node', server: ['src/runtimes/node.ts'], hop: ['src/cli/hop.ts'] },
  { name: 'Bun', command: 'node_modules/.bin/bun', server: ['src/runtimes/bun.ts'], hop: ['src/cli/hop.ts'] },
];

/** Starts `hop consume` and waits for its "consuming" log line. */
async function startConsumer(command: string, args: string[], env: Record<string, string>) {
  const child = spawn(command, [...args, 'consume'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => (children.delete(child), resolve())));
  const deadline = Date.now() + 20_000;
  while (!out.includes('"msg":"consuming"')) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`hop consume exited:\n${out}`);
    if (Date.now() > deadline) throw new Error(`hop consume did not start:\n${out}`);
    await sleep(50);
  }
  return {
    child,
    output: () => out,
    exited,
    signal: (s: NodeJS.Signals) => child.kill(s),
  };
}

describe('hop consume and hop redrive', () => {
  const run = (env: Record<string, string>, args = ['consume']) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('node', ['src/cli/hop.ts', ...args], { env: { ...process.env, HOP_DATABASE_URL: 'file:/nonexistent/x.db', ...env } });
      let out = '';
      child.stderr.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
      child.stdout.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
      child.once('exit', (code) => resolve({ code, out }));
    });

  it('refuses to start without the Redis queue, naming the variable', async () => {
    const memory = await run({});
    expect(memory.code).toBe(1);
    expect(memory.out).toContain('HOP_QUEUE: hop consume needs HOP_QUEUE=redis');
    const noUrl = await run({ HOP_QUEUE: 'redis', HOP_REDIS_TOKEN: 't' });
    expect(noUrl.code).toBe(1);
    expect(noUrl.out).toMatch(/HOP_REDIS_URL: missing \(HOP_QUEUE=redis needs it\)/);
  });

  it('hop redrive refuses the in-process queue and a bad --limit, naming them', async () => {
    const memory = await run({}, ['redrive']);
    expect(memory.code).toBe(1);
    expect(memory.out).toContain('HOP_QUEUE: hop redrive needs HOP_QUEUE=redis');
    const limit = await run({ HOP_QUEUE: 'redis', HOP_REDIS_URL: 'http://127.0.0.1:9', HOP_REDIS_TOKEN: 't' }, ['redrive', '--limit', '0']);
    expect(limit.code).toBe(1);
    expect(limit.out).toContain('--limit must be a whole number from 1 to 1000000');
  });
});

describe.runIf(redisAvailable()).each(runtimes)('clicks through Redis Streams on $name', ({ name, command, server, hop }) => {
  let redis: RedisServer;
  let rest: UpstashRest;

  beforeAll(async () => {
    redis = await startRedis();
    rest = await startUpstashRest({ redisPort: redis.port });
  });
  afterAll(async () => {
    await rest?.close();
    await redis?.stop();
  });

  /** A Redis command through the REST stand-in (what hop sees). */
  async function redisCall(...args: Array<string | number>): Promise<unknown> {
    const res = await fetch(rest.url, { method: 'POST', headers: { authorization: `Bearer ${rest.token}` }, body: JSON.stringify(args) });
    return ((await res.json()) as { result: unknown }).result;
  }
  /** Messages in entries of the stream (all, or those with the given ids): the producer adds one entry per batch. */
  async function messagesIn(stream: string, ids?: string[]): Promise<number> {
    const ranges = ids ? ids.map((id) => [id, id]) : [['-', '+']];
    let n = 0;
    for (const [from, to] of ranges) {
      const entries = (await redisCall('XRANGE', stream, from!, to!)) as Array<[string, string[]]>;
      for (const [, fields] of entries) n += fields[0] === 'b' ? (JSON.parse(fields[1]!) as unknown[]).length : 1;
    }
    return n;
  }

  it('hop redrive puts given-up clicks back on the stream and keeps the refused ones', async () => {
    const stream = `e2e:${name}:redrive`;
    const dead = `${stream}:dead`;
    await redisCall('XADD', dead, '*', 'm', '{"v":1,"kind":"click"}', 'id', '1-0', 'reason', 'not stored after 5 deliveries', 'deliveries', 6);
    await redisCall('XADD', dead, '*', 'm', 'not json {', 'id', '2-0', 'reason', 'not JSON', 'deliveries', 1);
    const env = { HOP_QUEUE: 'redis', HOP_REDIS_URL: rest.url, HOP_REDIS_TOKEN: rest.token, HOP_QUEUE_STREAM: stream, HOP_QUEUE_DEAD_LETTER: dead };
    const child = spawn(command, [...hop, 'redrive', '--json'], { env: { ...process.env, HOP_DATABASE_URL: 'file:/nonexistent/x.db', ...env } });
    let out = '';
    child.stdout.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
    child.stderr.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect({ code, out: out.trim() }).toEqual({ code: 0, out: '{"redriven":1,"kept":1}' });
    expect(await messagesIn(stream)).toBe(1);
    expect(await redisCall('XLEN', dead)).toBe(1);
  });

  it('stores exactly N clicks for N redirects, through a consumer killed with SIGKILL mid-stream and a new one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-clicks-redis-'));
    dirs.push(dir);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const stream = `e2e:${name}:clicks`;
    const common = {
      HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
      HOP_QUEUE: 'redis',
      HOP_REDIS_URL: rest.url,
      HOP_REDIS_TOKEN: rest.token,
      HOP_QUEUE_STREAM: stream,
      HOP_QUEUE_DEAD_LETTER: `${stream}:dead`,
      HOP_QUEUE_CLAIM_IDLE_MS: '1500',
    };
    const hopServer = await startProcess(
      command,
      server,
      { ...common, PORT: String(port), HOP_ADMIN_TOKEN: ADMIN, HOP_LOG_LEVEL: 'warn', HOP_SHUTDOWN_DELAY_MS: '0', HOP_CLICK_CONSUMER: 'off' },
      base,
    );
    const consumerEnv = { ...common, HOP_LOG_LEVEL: 'info' };
    let first: Awaited<ReturnType<typeof startConsumer>> | undefined;
    let second: Awaited<ReturnType<typeof startConsumer>> | undefined;
    let total = 0;
    let freezes = 0;
    try {
      const link = await createClickLink(base, ADMIN, 'r', BROWSER);
      const clicks = link.clicks;
      async function redirects(n: number) {
        expect(await link.visit(n)).toEqual(Array(n).fill(302));
        total += n;
      }
      async function waitForClicks(n: number, timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        let seen = -1;
        while (Date.now() < deadline) {
          seen = await clicks();
          if (seen === n) return;
          await sleep(100);
        }
        throw new Error(`expected ${n} clicks, saw ${seen}`);
      }
      /** Pending entries per consumer name (XPENDING summary). */
      async function pendingByConsumer(): Promise<Record<string, number>> {
        const summary = (await redisCall('XPENDING', stream, 'hop-clicks')) as [number, unknown, unknown, Array<[string, string]> | null];
        return Object.fromEntries((summary[3] ?? []).map(([c, n]) => [c, Number(n)]));
      }

      // The server produces; nobody consumes yet: the clicks wait in the stream.
      await redirects(100);
      await sleep(600);
      expect(await messagesIn(stream)).toBe(100);
      expect(await clicks()).toBe(0);

      first = await startConsumer(command, hop, consumerEnv);
      await waitForClicks(100);
      await redirects(100);
      await waitForClicks(200);

      // Freeze the consumer while it waits in a blocking read, so the next entries are delivered to it and stay
      // pending in its name; then kill it.
      let frozenWith = 0;
      for (freezes = 1; freezes <= 5 && !frozenWith; freezes++) {
        first.signal('SIGSTOP');
        await redirects(50);
        await sleep(1200);
        const pending = (await redisCall('XPENDING', stream, 'hop-clicks', '-', '+', 1000)) as Array<[string, ...unknown[]]>;
        frozenWith = await messagesIn(stream, pending.map(([id]) => id));
        if (!frozenWith) {
          first.signal('SIGCONT');
          await waitForClicks(total);
        }
      }
      expect(frozenWith).toBeGreaterThan(0);
      first.signal('SIGKILL');
      await first.exited;
      expect(await clicks()).toBeLessThanOrEqual(total - frozenWith);

      // More clicks while no consumer runs, then a new consumer: it takes the dead one's entries over.
      await redirects(100);
      second = await startConsumer(command, hop, consumerEnv);
      await waitForClicks(total);
      expect(second.output()).toContain('queue entries taken over from a silent consumer');
      expect(await redisCall('XLEN', stream)).toBe(0);
      expect(await pendingByConsumer()).toEqual({});
      await sleep(500);
      expect(await clicks()).toBe(total);
    } finally {
      await hopServer.stop();
      if (second) {
        second.signal('SIGTERM');
        await second.exited;
      }
    }
    expect(second!.child.exitCode).toBe(0);
    expect(second!.output()).toContain('"msg":"click queue closed"');
    const db = new Database(join(dir, 'hop.db'), { readonly: true });
    try {
      expect(db.prepare('select count(*) as n from clicks').get()).toMatchObject({ n: total });
      expect(db.prepare("select clicks from links where slug = 'r'").get()).toMatchObject({ clicks: total });
    } finally {
      db.close();
    }
    // 100 + 100 before the freeze, 50 per try at freezing the consumer in its read, 100 after the kill.
    expect(total).toBe(300 + 50 * (freezes - 1));
  });
  it('a server that also consumes (the default) hands what it holds at SIGTERM to the stream; the next start stores it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-clicks-redis-'));
    dirs.push(dir);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const stream = `e2e:${name}:inprocess`;
    const env = {
      PORT: String(port),
      HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
      HOP_ADMIN_TOKEN: ADMIN,
      HOP_LOG_LEVEL: 'warn',
      HOP_SHUTDOWN_DELAY_MS: '0',
      HOP_QUEUE: 'redis',
      HOP_REDIS_URL: rest.url,
      HOP_REDIS_TOKEN: rest.token,
      HOP_QUEUE_STREAM: stream,
      HOP_QUEUE_DEAD_LETTER: `${stream}:dead`,
    };
    let hopServer = await startProcess(command, server, env, base);
    let link: ClickLink | undefined;
    try {
      link = await createClickLink(base, ADMIN, 'i', BROWSER);
      expect(await link.visit(100)).toEqual(Array(100).fill(302));
    } finally {
      await hopServer.stop(); // SIGTERM at once: some clicks are still in the producer's buffer
    }
    const count = () => {
      const db = new Database(join(dir, 'hop.db'), { readonly: true });
      try {
        return (db.prepare('select count(*) as n from clicks').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const storedAtExit = count();
    expect(storedAtExit + Number(await redisCall('XLEN', stream))).toBe(100);

    hopServer = await startProcess(command, server, env, base);
    try {
      const deadline = Date.now() + 15_000;
      let clicks = -1;
      while (Date.now() < deadline && clicks !== 100) {
        clicks = await link!.clicks();
        if (clicks !== 100) await sleep(100);
      }
      expect(clicks).toBe(100);
    } finally {
      await hopServer.stop();
    }
    expect(count()).toBe(100);
    expect(await redisCall('XLEN', stream)).toBe(0);
  });
});
