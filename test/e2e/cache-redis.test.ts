// The link cache across processes, for real: two hop servers (Node and Bun, each way round) on one embedded libSQL
// file with HOP_CACHE=redis, a real redis-server (append-only file, so a crash keeps what it held) behind the Upstash
// REST stand-in. A change made through one process is served by it at once and by the other within HOP_CACHE_TTL_S
// (the documented bound) and never undone after that; "not found" cached in both tiers gives way to a new link
// within the negative TTL; a poisoned Redis entry (garbage, a javascript: target) is dropped and never served; and
// with redis-server SIGKILLed under load every redirect still answers 302 to the right target, the circuit opens
// (log line, /metrics), and a change made while Redis was down reaches it once it is back (the deferred invalidation),
// also when the process that made the change gets no request after that.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { GENEROUS_RATE_LIMITS } from '../support/rate-limits.ts';
import { redisAvailable, startRedis, type RedisServer } from '../support/redis.ts';
import { startUpstashRest, type UpstashRest } from '../support/upstash-rest.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = { name: 'Node', command: process.execPath, entry: join(ROOT, 'src/runtimes/node.ts') };
const BUN = { name: 'Bun', command: join(ROOT, 'node_modules/.bin/bun'), entry: join(ROOT, 'src/runtimes/bun.ts') };
const ADMIN = 'c'.repeat(40);
/** HOP_CACHE_TTL_S and HOP_CACHE_NEGATIVE_TTL_S: how long another process may serve what changed elsewhere. */
const TTL_S = 1;
/** Room for the requests themselves on a busy machine: the assertions allow TTL_S plus this, nothing more. */
const MARGIN_MS = 500;
const BOUND_MS = TTL_S * 1000 + MARGIN_MS;
const DOMAIN = 'localhost';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pairs = [
  { a: NODE, b: BUN },
  { a: BUN, b: NODE },
];

interface Answer {
  status: number;
  location: string | null;
}

async function visit(base: string, slug: string): Promise<Answer> {
  const res = await fetch(`${base}/${slug}`, { redirect: 'manual' });
  await res.body?.cancel();
  return { status: res.status, location: res.headers.get('location') };
}

const moved = (location: string): Answer => ({ status: 302, location });

/** One sample of a Prometheus series from /metrics, labels as rendered (sorted by name); undefined when absent. */
async function metric(base: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The sum of every series of a family (all label sets). */
async function metricSum(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

const CIRCUIT = 'hop_cache_circuit_open{store="redis"}';
const POISONED = 'hop_cache_requests_total{cache="links",result="poisoned",tier="shared"}';

/** Polls `check` every `everyMs` until it returns true; fails with `what` after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe.runIf(redisAvailable()).each(pairs)('the link cache through Redis: $a.name (A) and $b.name (B)', ({ a, b }) => {
  let dir: string;
  let redis: RedisServer;
  let rest: UpstashRest;
  let procA: Running | undefined;
  let procB: Running | undefined;
  let A: string;
  let B: string;
  let auth: Record<string, string>;
  const ids = new Map<string, string>();
  const label = `${a.name} (A) + ${b.name} (B)`;

  /** A Redis command through the REST stand-in, as hop sends them. */
  async function redisCall(...args: Array<string | number>): Promise<unknown> {
    const res = await fetch(rest.url, { method: 'POST', headers: { authorization: `Bearer ${rest.token}` }, body: JSON.stringify(args) });
    const body = (await res.json()) as { result?: unknown; error?: string };
    if (body.error !== undefined) throw new Error(`redis: ${body.error}`);
    return body.result;
  }
  const cacheKey = (slug: string) => `hop:link:${DOMAIN}/${slug}`;
  const target = (slug: string, version = 1) => `https://example.com/${slug}/v${version}`;

  /** Whether Redis holds the link itself (JSON), not a tombstone or "not found". */
  const filled = async (slug: string) => String(await redisCall('GET', cacheKey(slug))).startsWith('{');

  async function createLink(slug: string, url = target(slug)) {
    const res = await fetch(`${A}/v1/links`, { method: 'POST', headers: auth, body: JSON.stringify({ url, slug }) });
    expect(res.status, await res.clone().text()).toBe(201);
    ids.set(slug, ((await res.json()) as { id: string }).id);
  }
  async function patchUrl(slug: string, url: string) {
    const res = await fetch(`${A}/v1/links/${ids.get(slug)}`, { method: 'PATCH', headers: auth, body: JSON.stringify({ url }) });
    expect(res.status, await res.clone().text()).toBe(200);
  }

  async function startHop(runtime: typeof NODE, port: number) {
    const env = {
      PORT: String(port),
      HOST: '127.0.0.1',
      HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
      HOP_ADMIN_TOKEN: ADMIN,
      HOP_LOG_LEVEL: 'warn',
      HOP_SHUTDOWN_DELAY_MS: '0',
      HOP_CLICKS: 'off',
      HOP_CACHE: 'redis',
      HOP_REDIS_URL: rest.url,
      HOP_REDIS_TOKEN: rest.token,
      HOP_CACHE_TTL_S: String(TTL_S),
      HOP_CACHE_NEGATIVE_TTL_S: String(TTL_S),
      // The REST stand-in shares the test's event loop with the load below: room enough that a busy moment is not
      // taken for an outage (a dead Redis answers 503 at once, so this does not slow the outage down).
      HOP_CACHE_TIMEOUT_MS: '250',
      // The polls and the load below come from one address.
      ...GENEROUS_RATE_LIMITS,
    };
    return startProcess(runtime.command, [runtime.entry], env, `http://127.0.0.1:${port}`);
  }

  // Links for every test, created first: a new link's address holds a tombstone in Redis for 10 s (fills that lost
  // a race with the creation must not land), so links are only filled into Redis once those have expired.
  const SLUGS = {
    change: 'chg',
    gone: 'del',
    poisonJson: 'pjs',
    poisonGarbage: 'pgb',
    warm: ['w1', 'w2', 'w3', 'w4'],
    cold: ['c1', 'c2', 'c3', 'c4'],
    idle: 'idl',
  };
  const everySlug = [SLUGS.change, SLUGS.gone, SLUGS.poisonJson, SLUGS.poisonGarbage, SLUGS.idle, ...SLUGS.warm, ...SLUGS.cold];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hop-cache-redis-'));
    redis = await startRedis({ persistence: 'aof' });
    rest = await startUpstashRest({ redisPort: redis.port });
    const portA = await freePort();
    A = `http://127.0.0.1:${portA}`;
    // A creates and migrates the database file; B starts on it once it exists.
    procA = await startHop(a, portA);
    const portB = await freePort();
    B = `http://127.0.0.1:${portB}`;
    procB = await startHop(b, portB);

    const ws = await fetch(`${A}/v1/workspaces`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'cache' }),
    });
    expect(ws.status).toBe(201);
    auth = { authorization: `Bearer ${((await ws.json()) as { apiKey: { key: string } }).apiKey.key}`, 'content-type': 'application/json' };
    for (const slug of everySlug) await createLink(slug);
    expect(await redisCall('GET', cacheKey(SLUGS.change))).toBe('~');
    await until('the creations\' tombstones to expire', async () => {
      for (const slug of everySlug) if ((await redisCall('GET', cacheKey(slug))) !== null) return false;
      return true;
    }, 15_000, 250);
  }, 60_000);

  afterAll(async () => {
    await procA?.stop();
    await procB?.stop();
    await rest?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  /**
   * Polls B for `slug` until it answers `expected`, from `since`; returns how long that took, then checks that B
   * keeps answering it for more than another TTL (an old copy never comes back).
   */
  async function tookB(slug: string, expected: Answer, since: number): Promise<number> {
    const seen: Answer[] = [];
    let took = -1;
    while (Date.now() - since < BOUND_MS + 2000) {
      const answer = await visit(B, slug);
      seen.push(answer);
      if (answer.status === expected.status && answer.location === expected.location) {
        took = Date.now() - since;
        break;
      }
      await sleep(10);
    }
    expect(took, `B never answered ${JSON.stringify(expected)}; last answers ${JSON.stringify(seen.slice(-3))}`).toBeGreaterThanOrEqual(0);
    const after: Answer[] = [];
    const watchUntil = Date.now() + TTL_S * 1000 + 300;
    while (Date.now() < watchUntil) {
      after.push(await visit(B, slug));
      await sleep(25);
    }
    expect(after.filter((x) => x.status !== expected.status || x.location !== expected.location)).toEqual([]);
    return took;
  }

  it('a change through A: A serves it at once, B within HOP_CACHE_TTL_S, and neither an old target after that', async () => {
    const slug = SLUGS.change;
    expect(await visit(A, slug)).toEqual(moved(target(slug)));
    expect(await visit(B, slug)).toEqual(moved(target(slug)));
    // Both processes hold it in memory; Redis holds it as JSON (filled in the background).
    await until('the Redis fill', () => filled(slug));
    const stored = JSON.parse((await redisCall('GET', cacheKey(slug))) as string) as { url: string };
    expect(stored).toMatchObject({ url: target(slug) });
    expect(await visit(B, slug)).toEqual(moved(target(slug)));

    const started = Date.now();
    await patchUrl(slug, target(slug, 2));
    // The changing process never serves the old target, and the Redis entry is a tombstone, not the old link.
    expect(await visit(A, slug)).toEqual(moved(target(slug, 2)));
    expect(await redisCall('GET', cacheKey(slug))).toBe('~');
    const fromA: Answer[] = [];
    const watchA = (async () => {
      while (Date.now() - started < BOUND_MS) {
        fromA.push(await visit(A, slug));
        await sleep(20);
      }
    })();
    const took = await tookB(slug, moved(target(slug, 2)), started);
    await watchA;
    expect(fromA.length).toBeGreaterThan(0);
    expect(fromA.filter((x) => x.location !== target(slug, 2))).toEqual([]);
    console.log(`[cache-redis] ${label}: B served the PATCHed target ${took} ms after the PATCH was sent (bound ${BOUND_MS} ms)`);
    expect(took).toBeLessThanOrEqual(BOUND_MS);
  }, 30_000);

  it('a delete through A: A answers 404 at once, B within HOP_CACHE_TTL_S', async () => {
    const slug = SLUGS.gone;
    expect(await visit(A, slug)).toEqual(moved(target(slug)));
    expect(await visit(B, slug)).toEqual(moved(target(slug)));
    await until('the Redis fill', () => filled(slug));
    expect(await visit(B, slug)).toEqual(moved(target(slug)));

    const started = Date.now();
    const res = await fetch(`${A}/v1/links/${ids.get(slug)}`, { method: 'DELETE', headers: auth });
    expect(res.status).toBe(204);
    expect(await visit(A, slug)).toEqual({ status: 404, location: null });
    const took = await tookB(slug, { status: 404, location: null }, started);
    console.log(`[cache-redis] ${label}: B answered 404 ${took} ms after the DELETE was sent (bound ${BOUND_MS} ms)`);
    expect(took).toBeLessThanOrEqual(BOUND_MS);
  }, 30_000);

  it('a link created where B (and Redis) cached "not found": A serves it at once, B within the negative TTL', async () => {
    const slug = 'neg';
    expect(await visit(B, slug)).toEqual({ status: 404, location: null });
    // "Not found" reaches Redis too (never KV).
    await until('the negative entry in Redis', async () => (await redisCall('GET', cacheKey(slug))) === '-', 2000, 10);
    expect(await visit(A, slug)).toEqual({ status: 404, location: null });
    expect(await visit(B, slug)).toEqual({ status: 404, location: null });

    const started = Date.now();
    await createLink(slug);
    expect(await visit(A, slug)).toEqual(moved(target(slug)));
    const took = await tookB(slug, moved(target(slug)), started);
    console.log(`[cache-redis] ${label}: B served the new link ${took} ms after its creation was sent (bound ${BOUND_MS} ms)`);
    expect(took).toBeLessThanOrEqual(BOUND_MS);
  }, 30_000);

  it('a poisoned Redis entry (garbage, a javascript: target) is dropped and never served', async () => {
    const json = SLUGS.poisonJson;
    const garbage = SLUGS.poisonGarbage;
    // A real entry first, then the same link with only its target changed, so nothing but the target is invalid.
    expect(await visit(A, json)).toEqual(moved(target(json)));
    await until('the Redis fill', () => filled(json));
    const real = JSON.parse((await redisCall('GET', cacheKey(json))) as string) as Record<string, unknown>;
    expect(real.url).toBe(target(json));
    expect(await redisCall('SET', cacheKey(json), JSON.stringify({ ...real, url: 'javascript:alert(1)' }), 'XX')).toBe('OK');
    expect(await redisCall('SET', cacheKey(garbage), '{"id":"lnk_1","url":"https://evil.example/"', 'EX', 600)).toBe('OK');
    const before = (await metric(B, POISONED)) ?? 0;

    // B has neither in memory: it reads Redis, refuses both entries and serves the database's targets.
    expect(await visit(B, json)).toEqual(moved(target(json)));
    expect(await visit(B, garbage)).toEqual(moved(target(garbage)));
    expect(await metric(B, POISONED)).toBe(before + 2);
    // Dropped from Redis (a tombstone stands in), so no other process reads them either.
    const dropped = async () => (await redisCall('GET', cacheKey(json))) === '~' && (await redisCall('GET', cacheKey(garbage))) === '~';
    await until('the poisoned entries to be dropped', dropped, 2000, 10);
    // A, once its own copy has expired, reads the tombstone and the database.
    await sleep(TTL_S * 1000 + 100);
    expect(await visit(A, json)).toEqual(moved(target(json)));
    expect(await visit(A, garbage)).toEqual(moved(target(garbage)));
  }, 30_000);

  it('redis-server killed under load: no redirect fails, the circuit opens, a change made meanwhile reaches Redis later', async () => {
    // Warm links are in both tiers before the crash; cold ones were never asked for, so only the database has them.
    for (const slug of SLUGS.warm) {
      expect(await visit(A, slug)).toEqual(moved(target(slug)));
      expect(await visit(B, slug)).toEqual(moved(target(slug)));
    }
    for (const slug of SLUGS.warm) {
      await until(`the Redis fill of ${slug}`, () => filled(slug));
    }
    for (const slug of SLUGS.cold) expect(await redisCall('GET', cacheKey(slug))).toBeNull();
    expect(await metric(A, CIRCUIT)).not.toBe(1);
    const errorsBefore = await metricSum(A, 'hop_cache_shared_errors_total');

    type Sample = { slug: string; answer: Answer | string; ms: number; at: number };
    const samples: Sample[] = [];
    const LOOPS = 20;
    let killedAt = Number.POSITIVE_INFINITY;
    // The load runs for a fixed time after the kill, however long a busy machine takes to get there.
    let stopAt = Number.POSITIVE_INFINITY;
    const loop = async (n: number) => {
      for (let i = n; Date.now() < stopAt; i++) {
        // Cold links only once Redis is gone: their first read ever happens during the outage.
        const pool = Date.now() < killedAt ? SLUGS.warm : [...SLUGS.warm, ...SLUGS.cold];
        const slug = pool[i % pool.length]!;
        const t0 = performance.now();
        let answer: Answer | string;
        try {
          answer = await visit(A, slug);
        } catch (err) {
          answer = String(err);
        }
        samples.push({ slug, answer, ms: performance.now() - t0, at: Date.now() });
      }
    };
    const load = Promise.all(Array.from({ length: LOOPS }, (_, n) => loop(n)));
    await sleep(1000);
    await redis.kill('SIGKILL');
    killedAt = Date.now();
    stopAt = killedAt + 2500;
    await load;

    const wrong = samples.filter(
      (s) => typeof s.answer === 'string' || s.answer.status !== 302 || s.answer.location !== target(s.slug),
    );
    const during = samples.filter((s) => s.at >= killedAt);
    const coldDuring = during.filter((s) => SLUGS.cold.includes(s.slug));
    const latencies = during.map((s) => s.ms).sort((x, y) => x - y);
    const ms = (p: number) => (latencies.length === 0 ? '-' : `${percentile(latencies, p).toFixed(1)} ms`);
    console.log(
      `[cache-redis] ${label}: ${samples.length} redirects on A with ${LOOPS} loops (${during.length} with Redis down, ` +
        `${coldDuring.length} of them for links only in the database), ${wrong.length} failed; ` +
        `with Redis down p50 ${ms(50)}, p99 ${ms(99)}, max ${ms(100)}`,
    );
    expect(wrong.length, JSON.stringify(wrong.slice(0, 5))).toBe(0);
    expect(during.length).toBeGreaterThan(0);
    expect(coldDuring.length).toBeGreaterThan(0);
    expect(procA!.output()).toContain('shared cache circuit open');
    expect(await metric(A, CIRCUIT)).toBe(1);
    expect(await metricSum(A, 'hop_cache_shared_errors_total')).toBeGreaterThan(errorsBefore);

    // A change while Redis is down: A serves it at once; its invalidation of Redis waits.
    const changed = SLUGS.warm[0]!;
    await patchUrl(changed, target(changed, 2));
    expect(await visit(A, changed)).toEqual(moved(target(changed, 2)));

    // Back with what it held (append-only file): the old link is still there, stale.
    await redis.restart();
    expect(JSON.parse((await redisCall('GET', cacheKey(changed))) as string)).toMatchObject({ url: target(changed) });

    // A's next shared-tier calls (misses: unknown slugs) find Redis again; the invalidation is sent then.
    let probe = 0;
    await until(
      'A to send the deferred invalidation',
      async () => {
        await visit(A, `probe${probe++}`);
        return (await redisCall('GET', cacheKey(changed))) === '~';
      },
      15_000,
      100,
    );
    await until("A's circuit to close", async () => (await metric(A, CIRCUIT)) === 0, 15_000, 100);

    // B reads Redis (its circuit is closed: it never saw the outage), finds the tombstone and serves the change.
    expect(await metric(B, CIRCUIT)).not.toBe(1);
    const fromB: Answer[] = [];
    const watchUntil = Date.now() + TTL_S * 1000 + 500;
    while (Date.now() < watchUntil) {
      fromB.push(await visit(B, changed));
      await sleep(25);
    }
    expect(fromB.filter((x) => x.location !== target(changed, 2))).toEqual([]);
    for (const slug of [...SLUGS.warm.slice(1), ...SLUGS.cold]) expect(await visit(B, slug)).toEqual(moved(target(slug)));
  }, 60_000);

  it('a change made while Redis was down reaches the other process once Redis is back, with no traffic on A', async () => {
    const slug = SLUGS.idle;
    // Independent of the test before: Redis is up when this one starts, whatever that one left.
    if (!redis.running()) await redis.restart();
    expect(await visit(A, slug)).toEqual(moved(target(slug)));
    expect(await visit(B, slug)).toEqual(moved(target(slug)));
    await until('the Redis fill', () => filled(slug));

    await redis.kill('SIGKILL');
    await patchUrl(slug, target(slug, 2));
    expect(await visit(A, slug)).toEqual(moved(target(slug, 2)));
    // While Redis is down, B reads the database once its own copy has expired.
    await tookB(slug, moved(target(slug, 2)), Date.now());

    // Back with the old link (append-only file). A gets no request: only its own retry can send the invalidation.
    await redis.restart();
    const back = Date.now();
    expect(JSON.parse((await redisCall('GET', cacheKey(slug))) as string)).toMatchObject({ url: target(slug) });
    const seen: Array<{ at: number; location: string | null }> = [];
    while (Date.now() - back < 6000) {
      seen.push({ at: Date.now() - back, location: (await visit(B, slug)).location });
      await sleep(50);
    }
    const stale = seen.filter((x) => x.location !== target(slug, 2));
    console.log(
      `[cache-redis] ${label}: after Redis came back, B served the old target ${stale.length} times of ${seen.length}, ` +
        `last at ${stale.at(-1)?.at ?? '-'} ms; Redis holds ${String(await redisCall('GET', cacheKey(slug))).slice(0, 40)}`,
    );
    // Converged within a few seconds (the circuit's cooldown and HOP_CACHE_TTL_S), and no old target after that.
    expect(seen.filter((x) => x.at > 4000 && x.location !== target(slug, 2))).toEqual([]);
  }, 60_000);
});
