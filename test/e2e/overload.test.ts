// The in-process click queue under overload, on real hop processes (Node as `npm start` runs it, and Bun): while
// the consumer is stalled (the test holds the database's write lock) redirects keep coming, the queue reaches its
// bound and redirects are refused with 503 + Retry-After; once the lock is gone every redirect that was served has
// exactly one stored click. And SIGKILL under that load loses at most the documented bound (HOP_QUEUE_MAX_BUFFERED
// clicks): served minus stored after a restart is never more.
import Database from 'libsql';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { createClickLink } from '../support/click-link.ts';

const ADMIN = 'c'.repeat(40);
const BOUND = 2000;
const CONNECTIONS = 50;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const runtimes = [
  { name: 'Node', command: 'node', args: ['--max-semi-space-size=8', 'bin/hop.js', 'serve'] },
  { name: 'Bun', command: 'node_modules/.bin/bun', args: ['src/runtimes/bun.ts'] },
];

/**
 * `CONNECTIONS` loops, each sending the next redirect when the last answered, until `stop()`: every answer is
 * counted, none is in flight when `done` resolves (unless the server was killed under it: those are `failed`).
 */
function load(url: string) {
  const counts = { served: 0, refused: 0, other: 0, failed: 0, retryAfter: new Set<string | null>() };
  let running = true;
  const loop = async () => {
    while (running) {
      try {
        const res = await fetch(url, { redirect: 'manual' });
        await res.arrayBuffer();
        if (res.status >= 300 && res.status < 400) counts.served += 1;
        else if (res.status === 503) {
          counts.refused += 1;
          counts.retryAfter.add(res.headers.get('retry-after'));
        } else counts.other += 1;
      } catch {
        counts.failed += 1;
        await sleep(10);
      }
    }
  };
  const loops = Array.from({ length: CONNECTIONS }, loop);
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
      return counts;
    },
  };
}

/** Holds the file's write lock from another connection, as another process could, until released. */
function holdWriteLock(file: string) {
  const db = new Database(file, { timeout: 10_000 });
  db.exec('begin immediate');
  return () => {
    db.exec('rollback');
    db.close();
  };
}

const storedClicks = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return Number((db.prepare('select count(*) as n from clicks').get() as { n: number }).n);
  } finally {
    db.close();
  }
};

const metric = async (base: string, name: string) =>
  Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(`${base}/metrics`)).text())?.[1] ?? NaN);

async function start(command: string, args: string[], dir: string, port: number): Promise<Running> {
  const env = {
    PORT: String(port),
    HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
    HOP_ADMIN_TOKEN: ADMIN,
    HOP_LOG_LEVEL: 'warn',
    HOP_SHUTDOWN_DELAY_MS: '0',
    HOP_QUEUE_MAX_BUFFERED: String(BOUND),
    HOP_DATABASE_BUSY_TIMEOUT_MS: '200',
    HOP_RATE_LIMIT_REDIRECT: '1000000000/60s',
  };
  return startProcess(command, args, env, `http://127.0.0.1:${port}`);
}

describe.each(runtimes)('overload on $name', ({ command, args }) => {
  it('refuses redirects with 503 + Retry-After while the queue is full, and stores a click for every redirect served', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-overload-'));
    dirs.push(dir);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const hop = await start(command, args, dir, port);
    try {
      await createClickLink(base, ADMIN, 'busy');
      const traffic = load(`${base}/busy`);
      await sleep(500);
      const release = holdWriteLock(join(dir, 'hop.db'));
      // Stalled consumer: the backlog reaches the bound and stays there; redirects past it are refused.
      const deadline = Date.now() + 20_000;
      while (traffic.counts.refused < 200 && Date.now() < deadline) await sleep(50);
      release();
      await sleep(1000);
      const counts = await traffic.stop();
      expect(counts.refused).toBeGreaterThanOrEqual(200);
      expect([...counts.retryAfter]).toEqual(['1']);
      expect(counts).toMatchObject({ other: 0, failed: 0 });
      const highWater = await metric(base, 'hop_click_queue_buffered_max\\{queue="memory"\\}');
      expect(highWater).toBe(BOUND);
      const drained = Date.now() + 30_000;
      while ((await metric(base, 'hop_click_queue_buffered\\{queue="memory"\\}')) > 0 && Date.now() < drained) await sleep(100);
      expect(await metric(base, 'hop_click_queue_events_total\\{queue="memory",result="refused"\\}')).toBe(counts.refused);
      await hop.stop();
      // Every answer was awaited, so the counts are exact: one stored click per redirect served, none per refusal.
      expect(storedClicks(join(dir, 'hop.db'))).toBe(counts.served);
    } finally {
      await hop.stop();
    }
  });

  it(`loses at most HOP_QUEUE_MAX_BUFFERED (${BOUND}) clicks to SIGKILL under load, and restarts on the same file`, { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-sigkill-'));
    dirs.push(dir);
    const file = join(dir, 'hop.db');
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const hop = await start(command, args, dir, port);
    let release: (() => void) | undefined;
    let counts;
    try {
      await createClickLink(base, ADMIN, 'kill');
      const traffic = load(`${base}/kill`);
      const stored = Date.now() + 20_000;
      while ((await metric(base, 'hop_click_queue_events_total\\{queue="memory",result="delivered"\\}')) < 100 && Date.now() < stored) {
        await sleep(50);
      }
      // The worst case for the bound: the consumer stalls, so the backlog fills up to it and stays full.
      release = holdWriteLock(file);
      const deadline = Date.now() + 20_000;
      while (traffic.counts.refused < 100 && Date.now() < deadline) await sleep(50);
      hop.child.kill('SIGKILL');
      counts = await traffic.stop();
    } finally {
      release?.();
      await hop.stop();
    }
    const again = await start(command, args, dir, port);
    await again.stop();
    const stored = storedClicks(file);
    // What the docs promise for the in-process queue: the clicks it held, never more than its bound.
    expect(counts.served - stored).toBeLessThanOrEqual(BOUND);
    // Nothing stored that was not asked for: at most the redirects whose answers the kill cut off.
    expect(stored).toBeLessThanOrEqual(counts.served + CONNECTIONS);
    expect(stored).toBeGreaterThan(0);
    // The kill came with the queue at its bound (the worst case), not before it was reached.
    expect(counts.refused).toBeGreaterThanOrEqual(100);
  });
});
