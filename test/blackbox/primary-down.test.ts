// Chaos: the sqld primary dies (SIGKILL) or hangs (SIGSTOP) while requests are in flight, on every runtime that
// can use sqld (Node, Bun, workerd). Acceptance: every request answers within 3 s, as a normal answer or a 503
// problem+json with Retry-After, never a 500; /readyz says 503 while the primary is down; and the same hop
// process serves again once the primary is back (a new sqld on the same data and ports, or SIGCONT).
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { beforeAll, expect, it } from 'vitest';
import { call, expectProblem, type Workspace } from './suite.ts';
import { describeTarget, type Runtime, type Target } from './targets.ts';

/** The acceptance bound: every request answers within this long of being sent. */
const BOUND_MS = 3000;
const CONCURRENCY = 4;

interface Outcome {
  path: string;
  sentAt: number;
  doneAt: number;
  status: number | null;
  contentType: string | null;
  retryAfter: string | null;
  body: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Keeps CONCURRENCY requests in flight (alternately the API's list and a redirect) until stopped; `probe()` sends
 * one of each at once, so that requests sent right after a failure need not wait for a worker to be free.
 */
function startLoad(baseUrl: string, key: string, slugs: string[]) {
  const outcomes: Outcome[] = [];
  let running = true;
  async function send(path: string) {
    const sentAt = performance.now();
    try {
      // Generous client timeout: a request slower than the bound is recorded and fails the assertion below.
      const res = await fetch(`${baseUrl}${path}`, {
        headers: { authorization: `Bearer ${key}` },
        redirect: 'manual',
        signal: AbortSignal.timeout(15_000),
      });
      const body = await res.text();
      outcomes.push({
        path,
        sentAt,
        doneAt: performance.now(),
        status: res.status,
        contentType: res.headers.get('content-type'),
        retryAfter: res.headers.get('retry-after'),
        body,
      });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      const body = `${String(err)}${cause ? `: ${cause}` : ''}`;
      outcomes.push({ path, sentAt, doneAt: performance.now(), status: null, contentType: null, retryAfter: null, body });
    }
  }
  const pathOf = (n: number) => (n % 2 === 0 ? '/v1/links?limit=5' : `/${slugs[n % slugs.length]}`);
  async function worker(index: number) {
    for (let n = index; running; n++) await send(pathOf(n));
  }
  const workers = Array.from({ length: CONCURRENCY }, (_, i) => worker(i));
  const probes: Array<Promise<void>> = [];
  return {
    outcomes,
    probe() {
      probes.push(send(pathOf(0)), send(pathOf(1)));
    },
    async stop() {
      running = false;
      await Promise.all([...workers, ...probes]);
    },
  };
}

const isRedirect = (o: Outcome) => !o.path.startsWith('/v1/');
const normal = (o: Outcome) => (isRedirect(o) ? o.status === 302 : o.status === 200);
const unavailable = (o: Outcome) =>
  o.status === 503 &&
  !!o.contentType?.startsWith('application/problem+json') &&
  o.retryAfter !== null &&
  o.body.includes('"type":"urn:hop:problem:unavailable"');
const show = (o: Outcome) =>
  `${o.path} sent at +${Math.round(o.sentAt)} ms: ${o.status ?? 'no answer'} after ${Math.round(o.doneAt - o.sentAt)} ms ${o.body.slice(0, 200)}`;

/**
 * The acceptance criterion over a load run: nothing slower than the bound, nothing but normal answers and 503s,
 * and only 503s for requests sent once the primary was down, but for redirects of cached links.
 */
function assertOutcomes(outcomes: Outcome[], downAt: number) {
  expect(outcomes.filter((o) => o.doneAt - o.sentAt > BOUND_MS).map(show), `answers slower than ${BOUND_MS} ms`).toEqual([]);
  expect(outcomes.filter((o) => !normal(o) && !unavailable(o)).map(show), 'answers other than normal ones or 503 problem+json with Retry-After').toEqual([]);
  // Links in the link cache keep redirecting while the database is down; everything else answers 503.
  const servedFromCache = (o: Outcome) => isRedirect(o) && normal(o);
  expect(
    outcomes.filter((o) => o.sentAt >= downAt && !unavailable(o) && !servedFromCache(o)).map(show),
    'requests sent while the primary was down',
  ).toEqual([]);
  expect(outcomes.filter((o) => o.sentAt >= downAt && !isRedirect(o) && !unavailable(o)).map(show), 'API requests while down').toEqual([]);
  const down = outcomes.filter((o) => o.sentAt >= downAt);
  expect(down.some(isRedirect), 'a redirect was sent while the primary was down').toBe(true);
  expect(down.some((o) => !isRedirect(o)), 'an API request was sent while the primary was down').toBe(true);
}

/** Waits until requests of both kinds sent after `downAt` have been answered, and at least `minMs` have passed. */
async function whileDown(outcomes: Outcome[], downAt: number, minMs: number) {
  const answeredBoth = () => {
    const after = outcomes.filter((o) => o.sentAt >= downAt);
    return after.some(isRedirect) && after.some((o) => !isRedirect(o));
  };
  const deadline = performance.now() + 10_000;
  while ((!answeredBoth() || performance.now() - downAt < minMs) && performance.now() < deadline) await sleep(50);
}

async function readyzWhileDown(target: Target) {
  const sentAt = performance.now();
  const res = await call(target.baseUrl, '/readyz');
  expect(performance.now() - sentAt).toBeLessThanOrEqual(BOUND_MS);
  await expectProblem(res, 503, 'unavailable');
}

/** Waits for /readyz 200 again, then checks that the data is all there, redirects work and writes commit. */
async function expectRecovered(target: Target, ws: Workspace, slugs: string[]) {
  const deadline = performance.now() + 15_000;
  let last = '';
  while (performance.now() < deadline) {
    const res = await call(target.baseUrl, '/readyz').catch((err: unknown) => String(err));
    if (typeof res !== 'string' && res.status === 200) break;
    last = typeof res === 'string' ? res : `${res.status} ${await res.text()}`;
    await sleep(100);
  }
  const ready = await call(target.baseUrl, '/readyz');
  expect(ready.status, `not ready again: ${last}`).toBe(200);
  const list = await call(target.baseUrl, '/v1/links?limit=100', { key: ws.key });
  expect(list.status).toBe(200);
  const { data } = (await list.json()) as { data: Array<{ slug: string }> };
  expect(data.map((l) => l.slug).sort()).toEqual([...slugs].sort());
  for (const slug of slugs) {
    const res = await call(target.baseUrl, `/${slug}`);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`https://example.com/${slug}`);
  }
  const created = await call(target.baseUrl, '/v1/links', { method: 'POST', key: ws.key, json: { url: 'https://example.com/after' } });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  expect((await call(target.baseUrl, `/v1/links/${id}`, { method: 'DELETE', key: ws.key })).status).toBe(204);
}

/** Resolves once the process is stopped (state T), so that "sent during the hang" means what it says. */
async function stopped(pid: number) {
  for (let i = 0; i < 200; i++) {
    if (execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim().startsWith('T')) return;
    await sleep(5);
  }
  throw new Error(`sqld ${pid} did not stop`);
}

const runtimes: Runtime[] = ['node', 'bun', 'workerd'];

for (const runtime of runtimes) {
  describeTarget(
    { runtime, storage: 'sqld' },
    (target) => {
      let ws: Workspace;
      const slugs = ['down-1', 'down-2', 'down-3', 'down-4'];

      beforeAll(async () => {
        const res = await call(target().baseUrl, '/v1/workspaces', { method: 'POST', key: target().adminToken, json: { name: 'chaos' } });
        const body = (await res.json()) as { id: string; name: string; apiKey: { key: string } };
        ws = { id: body.id, name: body.name, key: body.apiKey.key };
        for (const slug of slugs) {
          const link = await call(target().baseUrl, '/v1/links', { method: 'POST', key: ws.key, json: { url: `https://example.com/${slug}`, slug } });
          expect(link.status).toBe(201);
        }
      });

      it('answers 503 problem+json within 3 s once sqld is killed, and serves again from a new sqld on the same data', async () => {
        const sqld = target().sqld!;
        const load = startLoad(target().baseUrl, ws.key, slugs);
        try {
          await sleep(300);
          expect(load.outcomes.filter(normal).length, 'normal answers before the kill').toBeGreaterThan(0);
          const exited = new Promise<void>((resolve) => sqld.current.child.once('exit', () => resolve()));
          sqld.current.signal('SIGKILL');
          await exited;
          const downAt = performance.now();
          load.probe();
          await Promise.all([whileDown(load.outcomes, downAt, 1000), readyzWhileDown(target())]);
          await load.stop();
          assertOutcomes(load.outcomes, downAt);
        } finally {
          await load.stop();
        }
        await sqld.restart();
        await expectRecovered(target(), ws, slugs);
      });

      it('answers 503 problem+json within 3 s while sqld hangs, and serves again once it resumes', async () => {
        const sqld = target().sqld!.current;
        const load = startLoad(target().baseUrl, ws.key, slugs);
        try {
          await sleep(300);
          expect(load.outcomes.filter(normal).length, 'normal answers before the hang').toBeGreaterThan(0);
          sqld.signal('SIGSTOP');
          await stopped(sqld.child.pid!);
          const downAt = performance.now();
          load.probe();
          // Past the database deadline (2 s), so that requests sent during the hang have been answered.
          await Promise.all([whileDown(load.outcomes, downAt, 2000), readyzWhileDown(target())]);
          await load.stop();
          assertOutcomes(load.outcomes, downAt);
        } finally {
          await load.stop();
          sqld.signal('SIGCONT');
        }
        await expectRecovered(target(), ws, slugs);
      });
    },
    `primary down: ${runtime} + sqld`,
  );
}
