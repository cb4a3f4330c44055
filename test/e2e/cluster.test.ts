// Several workers on one host (`hop serve` with HOP_WORKERS=2), real processes: they behave as one server (a change
// made through one is never served stale by the other, a quota counts for the host, every redirect stores exactly
// one click, one /metrics shows both), and the supervisor keeps them running: a SIGKILLed worker is replaced, SIGHUP
// replaces both without failing a request, SIGTERM drains and exits 0, workers that cannot start stop it with exit 1.
import Database from 'libsql';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IPHONE } from '../support/agents.ts';
import { createClickLink } from '../support/click-link.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ADMIN = 'w'.repeat(40);
const HOP = ['--max-semi-space-size=8', 'bin/hop.js', 'serve'];

let next = 0;
/** A fresh client address for every request (HOP_CLIENT_IP_HEADER): the 60/minute quota binds only where a test means it to. */
const freshClient = () => {
  next += 1;
  return `10.${(next >> 16) & 255}.${(next >> 8) & 255}.${next & 255}`;
};

/** `connections` loops sending redirects until stopped; counts answers and failures, and how many are in flight. */
function load(url: string, connections: number) {
  const counts = { served: 0, other: 0, failed: 0, inFlight: 0, failedSentAfter: 0 };
  /** Failures of requests sent after this moment are counted apart (set when a worker is killed). */
  let mark = Infinity;
  let running = true;
  const loop = async () => {
    while (running) {
      counts.inFlight += 1;
      const sentAt = performance.now();
      try {
        // A browser's agent: bots' clicks are stored but not counted on the link.
        const res = await fetch(url, { redirect: 'manual', headers: { 'x-test-client': freshClient(), 'user-agent': IPHONE } });
        await res.arrayBuffer();
        if (res.status === 302) counts.served += 1;
        else counts.other += 1;
      } catch {
        counts.failed += 1;
        if (sentAt >= mark) counts.failedSentAfter += 1;
        await sleep(5);
      } finally {
        counts.inFlight -= 1;
      }
    }
  };
  const loops = Array.from({ length: connections }, loop);
  return {
    counts,
    mark: () => (mark = performance.now()),
    async stop() {
      running = false;
      await Promise.all(loops);
      return counts;
    },
  };
}

/** The workers' pids, in the order they became ready (the supervisor logs each). */
const readyPids = (output: string) => [...output.matchAll(/"msg":"worker ready","worker":\d+,"pid":(\d+)/g)].map((m) => Number(m[1]));

async function waitFor(check: () => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}

describe('hop serve with HOP_WORKERS=2', () => {
  let dir: string;
  let port: number;
  let base: string;
  let hop: Running;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hop-cluster-'));
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    hop = await startProcess(
      'node',
      HOP,
      {
        PORT: String(port),
        HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
        HOP_WORKERS: '2',
        HOP_ADMIN_TOKEN: ADMIN,
        HOP_LOG_SAMPLE_RATE: '0',
        HOP_SHUTDOWN_DELAY_MS: '500',
        HOP_RATE_LIMIT_REDIRECT: '60/60s',
        HOP_CLIENT_IP_HEADER: 'x-test-client',
        HOP_CACHE_TTL_S: '600',
      },
      base,
      60_000,
    );
    // startProcess answers at the first ready worker; the tests want both.
    await waitFor(() => readyPids(hop.output()).length === 2, 30_000);
  }, 90_000);

  afterAll(async () => {
    await hop?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the admin key of the new database exactly once', () => {
    expect(hop.output().match(/export HOP_KEY=hop_/g)).toHaveLength(1);
  });

  it('never serves a changed link stale from either worker once the change has been answered', async () => {
    const link = await createClickLink(base, ADMIN, 'moving');
    const visit = (n: number) =>
      Promise.all(
        Array.from({ length: n }, () =>
          fetch(`${base}/moving`, { redirect: 'manual', headers: { 'x-test-client': freshClient() } }).then((r) => r.headers.get('location')),
        ),
      );
    // Both workers hold the old target in memory (HOP_CACHE_TTL_S=600: only an invalidation removes it).
    const before = await metricsOf(base);
    expect(new Set(await visit(100))).toEqual(new Set(['https://example.com/']));
    const warmed = await metricsOf(base);
    for (const worker of ['1', '2']) expect(hits(warmed, worker)).toBeGreaterThan(hits(before, worker));

    const patch = await fetch(`${base}/v1/links/${link.id}`, { method: 'PATCH', headers: link.auth, body: JSON.stringify({ url: 'https://example.org/new' }) });
    expect(patch.status).toBe(200);
    const after = await visit(200);
    expect(after.filter((l) => l !== 'https://example.org/new')).toEqual([]);
    // Spread over both workers.
    const done = await metricsOf(base);
    for (const worker of ['1', '2']) expect(lookups(done, worker)).toBeGreaterThan(lookups(warmed, worker));
  });

  it('counts a 60/minute redirect quota for the host: 60 admitted across both workers', async () => {
    await createClickLink(base, ADMIN, 'quota');
    const statuses = await Promise.all(
      Array.from({ length: 100 }, () => fetch(`${base}/quota`, { redirect: 'manual', headers: { 'x-test-client': '192.0.2.60' } }).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 302)).toHaveLength(60);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40);
  });

  it('stores exactly one click per redirect, from both workers, and shows both in one /metrics', async () => {
    const link = await createClickLink(base, ADMIN, 'counted');
    const traffic = load(`${base}/counted`, 16);
    await waitFor(() => traffic.counts.served + traffic.counts.other + traffic.counts.failed >= 10_000, 60_000);
    const counts = await traffic.stop();
    expect(counts.failed + counts.other).toBe(0);
    const served = counts.served;
    expect(served).toBeGreaterThanOrEqual(10_000);
    let stored = 0;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (stored = await link.clicks()) < served) await sleep(200);
    expect(stored).toBe(served);
    const db = new Database(join(dir, 'hop.db'), { readonly: true });
    try {
      const row = db.prepare('select count(*) as n, count(distinct id) as d from clicks where link_id = ?').get(link.id) as { n: number; d: number };
      expect(row).toMatchObject({ n: served, d: served });
    } finally {
      db.close();
    }
    const text = await (await fetch(`${base}/metrics`)).text();
    const delivered = (worker: string) =>
      Number(text.match(new RegExp(`hop_click_queue_events_total\\{worker="${worker}",queue="memory",result="delivered"\\} (\\d+)`))?.[1] ?? 0);
    expect(delivered('1')).toBeGreaterThan(0);
    expect(delivered('2')).toBeGreaterThan(0);
    expect(text).toContain('hop_workers{worker="supervisor"} 2');
  }, 90_000);

  it('replaces a SIGKILLed worker at once; only requests in flight on it fail', async () => {
    await createClickLink(base, ADMIN, 'killed');
    // The standby (a worker composed but not listening) takes the dead one's place.
    await waitFor(() => hop.output().includes('"msg":"standby ready"'), 30_000);
    const traffic = load(`${base}/killed`, 16);
    await sleep(500);
    const [victim] = readyPids(hop.output()).slice(-2);
    const inFlight = traffic.counts.inFlight;
    const killedAt = Date.now();
    traffic.mark();
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => readyPids(hop.output()).length === 3, 10_000);
    const replacedMs = Date.now() - killedAt;
    await sleep(300);
    const counts = await traffic.stop();
    expect(counts.other).toBe(0);
    // At most the requests in flight when it died (16 loops: about half were on the survivor). Those counted apart
    // were sent on the dead worker's keep-alive connections before the client noticed they had closed.
    expect(counts.failed).toBeLessThanOrEqual(inFlight);
    expect(hop.output()).toMatch(/"msg":"worker exited","worker":\d,"pid":\d+,"code":null,"signal":"SIGKILL"/);
    console.log(
      `SIGKILL: ${counts.failed} failed (${counts.failedSentAfter} sent after the kill) of ${inFlight} in flight; replacement listening after ${replacedMs} ms`,
    );
    expect(replacedMs).toBeLessThan(1000);
  }, 30_000);

  it('replaces both workers on SIGHUP without failing a request', async () => {
    await createClickLink(base, ADMIN, 'rolled');
    const before = readyPids(hop.output()).length;
    const traffic = load(`${base}/rolled`, 8);
    await sleep(300);
    process.kill(hop.child.pid!, 'SIGHUP');
    await waitFor(() => hop.output().includes('"msg":"rolling restart done"'), 30_000);
    await sleep(300);
    const counts = await traffic.stop();
    expect(readyPids(hop.output()).length).toBe(before + 2);
    expect(counts).toMatchObject({ failed: 0, other: 0 });
    expect(counts.served).toBeGreaterThan(0);
  }, 40_000);

  it('drains every worker on SIGTERM and exits 0', async () => {
    const exited = new Promise<number | null>((resolve) => hop.child.once('exit', (code) => resolve(code)));
    process.kill(hop.child.pid!, 'SIGTERM');
    await sleep(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    expect(await exited).toBe(0);
    expect(hop.output()).toMatch(/"msg":"worker stopped","worker":1,"pid":\d+,"code":0/);
    await expect(fetch(`${base}/livez`)).rejects.toThrow();
  }, 30_000);
});

describe('bun src/runtimes/bun.ts with HOP_WORKERS=2 (reusePort workers, the same supervisor)', () => {
  let dir: string;
  let base: string;
  let hop: Running;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hop-cluster-bun-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    hop = await startProcess(
      'node_modules/.bin/bun',
      ['src/runtimes/bun.ts'],
      {
        PORT: String(port),
        HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
        HOP_WORKERS: '2',
        HOP_ADMIN_TOKEN: ADMIN,
        HOP_LOG_SAMPLE_RATE: '0',
        HOP_SHUTDOWN_DELAY_MS: '300',
        HOP_RATE_LIMIT_REDIRECT: '60/60s',
        HOP_CLIENT_IP_HEADER: 'x-test-client',
        HOP_CACHE_TTL_S: '600',
      },
      base,
      60_000,
    );
    await waitFor(() => readyPids(hop.output()).length === 2, 30_000);
  }, 90_000);

  afterAll(async () => {
    await hop?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('behaves as one server: a quota for the host, no stale link after a change, one click per redirect; SIGHUP fails no request; SIGTERM exits 0', async () => {
    expect(hop.output().match(/export HOP_KEY=hop_/g)).toHaveLength(1);
    const link = await createClickLink(base, ADMIN, 'bun');
    const statuses = await Promise.all(
      Array.from({ length: 100 }, () => fetch(`${base}/bun`, { redirect: 'manual', headers: { 'x-test-client': '192.0.2.61' } }).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 302)).toHaveLength(60);

    const visit = (n: number) =>
      Promise.all(
        Array.from({ length: n }, () =>
          fetch(`${base}/bun`, { redirect: 'manual', headers: { 'x-test-client': freshClient(), 'user-agent': IPHONE } }).then((r) => r.headers.get('location')),
        ),
      );
    await visit(50);
    const patch = await fetch(`${base}/v1/links/${link.id}`, { method: 'PATCH', headers: link.auth, body: JSON.stringify({ url: 'https://example.org/bun' }) });
    expect(patch.status).toBe(200);
    expect((await visit(200)).filter((l) => l !== 'https://example.org/bun')).toEqual([]);

    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/hop_cache_requests_total\{worker="1",/);
    expect(text).toMatch(/hop_cache_requests_total\{worker="2",/);

    // SIGHUP under load: every worker replaced (reusePort listeners: the old one's queue is closed once the new listens).
    const traffic = load(`${base}/bun`, 8);
    await sleep(300);
    process.kill(hop.child.pid!, 'SIGHUP');
    await waitFor(() => hop.output().includes('"msg":"rolling restart done"'), 30_000);
    const counts = await traffic.stop();
    expect(counts).toMatchObject({ failed: 0, other: 0 });

    const exited = new Promise<number | null>((resolve) => hop.child.once('exit', (code) => resolve(code)));
    process.kill(hop.child.pid!, 'SIGTERM');
    expect(await exited).toBe(0);
    // Every redirect served (100 from one address, of which 60 admitted, then 250 browsers') stored exactly once.
    const db = new Database(join(dir, 'hop.db'), { readonly: true });
    try {
      expect(db.prepare('select count(*) as n from clicks where link_id = ?').get(link.id)).toMatchObject({ n: 60 + 250 + counts.served });
    } finally {
      db.close();
    }
  }, 60_000);
});

describe('the supervisor refuses what cannot run', () => {
  it('stops with exit 1 when workers keep failing to start (the port is taken)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-cluster-loop-'));
    const taken = await freePort();
    const blocker = (await import('node:net')).createServer().listen(taken, '127.0.0.1');
    try {
      const result = await run('node', HOP, {
        env: { ...process.env, PORT: String(taken), HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`, HOP_WORKERS: '2' },
        timeout: 60_000,
      }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      );
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`127.0.0.1:${taken} is already in use`);
      expect(result.stderr).toContain('workers keep crashing');
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it.each([
    [{ HOP_WORKERS: '0' }, [], 'HOP_WORKERS: must be at least 1'],
    [{ HOP_WORKERS: 'many' }, [], 'HOP_WORKERS: must be a whole number from 1 to 256, or auto'],
    [{}, ['--workers', '1.5'], 'HOP_WORKERS: must be a whole number from 1 to 256, or auto'],
  ])('refuses %o %o with a clear message', async (env, args, message) => {
    const result = await run('node', [...HOP, ...args], { env: { ...process.env, ...env, PORT: '1' } }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

async function metricsOf(base: string) {
  return (await fetch(`${base}/metrics`)).text();
}
/** A worker's link-cache memory hits. */
function hits(text: string, worker: string) {
  return Number(text.match(new RegExp(`hop_cache_requests_total\\{worker="${worker}",cache="links",result="hit",tier="memory"\\} (\\d+)`))?.[1] ?? 0);
}
/** A worker's link-cache lookups of every kind (memory hits and misses). */
function lookups(text: string, worker: string) {
  const miss = Number(text.match(new RegExp(`hop_cache_requests_total\\{worker="${worker}",cache="links",result="miss",tier="all"\\} (\\d+)`))?.[1] ?? 0);
  return hits(text, worker) + miss;
}
