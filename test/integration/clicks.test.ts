// Click recording over a real libSQL file: redirects make events, the consumer stores each exactly once (a
// redelivered or repeated batch counts nothing), a poison message is refused while the rest of its batch is stored,
// bots are told apart, rollups and the link's count advance in the same transaction, and orphan visits are kept.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { composeClicksService, invalidatingStore, type ClickStore } from '../../src/composition/clicks.ts';
import { type ClickRow, createClicksRepository } from '../../src/modules/clicks/clicks.repository.ts';
import type { ClickEvent } from '../../src/modules/clicks/clicks.schemas.ts';
import { createStatsRepository } from '../../src/modules/stats/stats.repository.ts';
import { newId } from '../../src/platform/crypto.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { AppError } from '../../src/errors.ts';
import { createMemoryQueue } from '../../src/platform/queue/memory.ts';
import { createThreadedClicks } from '../../src/runtimes/click-thread.ts';
import { createEmbeddedWriter, type EmbeddedWriter } from '../../src/runtimes/embedded-writer.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { DESKTOP, IPHONE, SLACK } from '../support/agents.ts';
import { expectProblem } from '../support/problem.ts';


let t: TestApp;
let sent: ClickEvent[];
let clicks: ClickStore;
let linkId: string;

beforeEach(async () => {
  sent = [];
  t = await createTestApp({}, { clickQueue: { send: (e) => void sent.push(e) } });
  // As the servers wire it (src/runtimes/server.ts): a committed batch drops links whose maxClicks count moved.
  clicks = invalidatingStore(composeClicksService(t.db), t.services.invalidation);
  const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/a', slug: 'a', maxClicks: 1000 } });
  linkId = ((await res.json()) as { id: string }).id;
});
afterEach(() => t.close());

const visit = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
  t.app.request(path, { method, headers: { host: 'localhost:8787', ...headers } });

async function linkClicks() {
  const res = await t.request(`/v1/links/${linkId}`);
  return ((await res.json()) as { clicks: number }).clicks;
}

/**
 * A link's counts per value of a dimension (`all`: the totals), checked to agree per slot and per UTC day (the days
 * before the watermark from the daily rollups, the days not closed yet from their slots, as statistics read them).
 */
async function rollup(dimension: string) {
  const read = async (sql: string, args: string[]) =>
    (await t.db.client.execute({ sql, args })).rows.map((r) => ({ value: r.value, humans: Number(r.humans), bots: Number(r.bots) }));
  const bySlot =
    dimension === 'all'
      ? await read("select '' as value, sum(humans) as humans, sum(bots) as bots from click_totals where link_id = ? having count(*) > 0", [linkId])
      : await read(
          'select value, sum(humans) as humans, sum(bots) as bots from click_rollups where link_id = ? and dimension = ? group by value order by value',
          [linkId, dimension],
        );
  const open =
    dimension === 'all'
      ? "select '' as value, humans, bots from click_totals where link_id = ?1 and slot >= (select days_until from rollup_watermark)"
      : 'select value, humans, bots from click_rollups where link_id = ?1 and dimension = ?2 and slot >= (select days_until from rollup_watermark)';
  const byDay = await read(
    `select value, sum(humans) as humans, sum(bots) as bots from (select value, humans, bots from click_days where link_id = ?1 and dimension = ?2 and day < (select days_until from rollup_watermark) union all ${open}) group by value order by value`,
    [linkId, dimension],
  );
  expect(byDay).toEqual(bySlot);
  return bySlot;
}

describe('click events at the redirect', () => {
  it('makes one event per redirect with the facts statistics need, and none for a refused request', async () => {
    await visit('/a?x=1', { 'user-agent': IPHONE, 'cf-ipcountry': 'de', referer: 'https://News.Example.org:443/p?q=secret' });
    await visit('/a', { 'user-agent': DESKTOP }, 'HEAD');
    await visit('/missing', { 'user-agent': DESKTOP });
    expect(sent).toHaveLength(3);
    const [click, head, orphan] = sent;
    expect(click).toMatchObject({ kind: 'click', linkId, workspaceId: t.workspaceId, country: 'DE', referrer: 'news.example.org', head: false });
    expect(click!.id).toMatch(/^clk_[0-9a-f]{32}$/);
    expect(JSON.stringify(click)).not.toContain('secret');
    expect(head).toMatchObject({ kind: 'click', head: true });
    expect(orphan).toMatchObject({ kind: 'orphan', domain: 'localhost', slug: 'missing' });
  });

  it('records nothing for an exhausted link answered 410', async () => {
    const expiresAt = new Date(t.clock.now.getTime() + 60_000).toISOString();
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/b', slug: 'b', expiresAt } });
    expect(res.status).toBe(201);
    t.clock.now = new Date(t.clock.now.getTime() + 120_000);
    expect((await visit('/b')).status).toBe(410);
    expect(sent).toEqual([]);
  });
});

// The repository's SQL runs over the libSQL client (sqld, Turso, replicas, Workers) or, on a plain embedded file,
// over the click thread's writer with its statements prepared once: the same rules must hold over both.
describe.each(['libSQL client', 'embedded writer'])('the consumer, SQL over the %s', (runner) => {
  let writer: EmbeddedWriter | undefined;
  beforeEach(() => {
    if (runner !== 'embedded writer') return;
    writer = createEmbeddedWriter(t.dbPath, { busyTimeoutMs: 5000, syncEachCommit: true });
    clicks = invalidatingStore(composeClicksService(t.db, writer), t.services.invalidation);
  });
  afterEach(() => writer?.close());

  it('stores N redirects as N clicks, counted once however often the batch is delivered', async () => {
    for (let i = 0; i < 150; i++) await visit('/a', { 'user-agent': i % 3 ? IPHONE : DESKTOP, 'cf-ipcountry': i % 2 ? 'DE' : 'FR' });
    const first = await clicks.ingest(sent);
    expect(first).toEqual({ stored: 150, duplicates: 0, rejected: [], limited: [{ domain: 'localhost', slug: 'a' }] });
    expect(await linkClicks()).toBe(150);

    // The consumer crashed after committing and before acknowledging: the queue delivers the same batch again,
    // also in pieces and interleaved with itself.
    expect(await clicks.ingest(sent)).toEqual({ stored: 0, duplicates: 150, rejected: [], limited: [] });
    await Promise.all([clicks.ingest(sent.slice(0, 70)), clicks.ingest(sent.slice(50)), clicks.ingest([...sent, ...sent])]);
    expect(await linkClicks()).toBe(150);
    expect(await t.count('clicks')).toBe(150);
    expect(await rollup('all')).toEqual([{ value: '', humans: 150, bots: 0 }]);
    expect(await rollup('country')).toEqual([
      { value: 'DE', humans: 75, bots: 0 },
      { value: 'FR', humans: 75, bots: 0 },
    ]);
    expect(await rollup('device')).toEqual([
      { value: 'desktop', humans: 50, bots: 0 },
      { value: 'mobile', humans: 100, bots: 0 },
    ]);
  });

  it('dead-letters a poison message and stores the rest of its batch', async () => {
    await visit('/a', { 'user-agent': IPHONE });
    await visit('/a', { 'user-agent': IPHONE });
    const poison = [{ v: 1, kind: 'click', id: 'not-an-id' }, 'garbage', null, { ...sent[0], __proto__: null, extra: 1 }];
    const result = await clicks.ingest([sent[0], ...poison, sent[1]]);
    expect(result.stored).toBe(2);
    expect(result.rejected.map((r) => r.index)).toEqual([1, 2, 3, 4]);
    expect(await linkClicks()).toBe(2);
  });

  it('counts bots (HEAD, crawlers, link previews, no user agent) apart, and not against the link', async () => {
    await visit('/a', { 'user-agent': IPHONE });
    await visit('/a', { 'user-agent': IPHONE }, 'HEAD');
    await visit('/a', { 'user-agent': SLACK });
    await visit('/a');
    await clicks.ingest(sent);
    expect(await linkClicks()).toBe(1);
    expect(await rollup('all')).toEqual([{ value: '', humans: 1, bots: 3 }]);
  });

  it('keeps orphan visits per domain and 15-minute slot', async () => {
    await visit('/nope', { 'user-agent': DESKTOP });
    await visit('/nope-2', { 'user-agent': DESKTOP });
    await clicks.ingest(sent);
    await clicks.ingest(sent);
    const rs = await t.db.client.execute('select domain, slot, humans, bots from orphan_rollups');
    expect(rs.rows).toHaveLength(1);
    expect(rs.rows[0]).toMatchObject({ domain: 'localhost', humans: 2, bots: 0 });
    expect(Number(rs.rows[0]!.slot) % 900_000).toBe(0);
  });

  it('enforces maxClicks from the stored count', async () => {
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/c', slug: 'c', maxClicks: 2 } });
    expect(res.status).toBe(201);
    for (let i = 0; i < 2; i++) expect((await visit('/c', { 'user-agent': IPHONE })).status).toBe(302);
    // The link (with its count of 0) is in the link cache now; the committed batch must drop it.
    expect(await clicks.ingest(sent)).toMatchObject({ stored: 2, limited: [{ domain: 'localhost', slug: 'c' }] });
    expect((await visit('/c', { 'user-agent': IPHONE })).status).toBe(410);
  });

  it('caps human visits with maxClicks: HEAD and bots are answered without using it up, and refused once it is', async () => {
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/once', slug: 'once', maxClicks: 1 } });
    expect(res.status).toBe(201);
    for (let i = 0; i < 3; i++) {
      expect((await visit('/once', { 'user-agent': IPHONE }, 'HEAD')).status).toBe(302);
      expect((await visit('/once', { 'user-agent': SLACK })).status).toBe(302);
    }
    await clicks.ingest(sent.splice(0));
    expect((await visit('/once', { 'user-agent': IPHONE })).status).toBe(302);
    await clicks.ingest(sent.splice(0));
    for (const [agent, method] of [[IPHONE, 'GET'], [IPHONE, 'HEAD'], [SLACK, 'GET'], [DESKTOP, 'GET']] as const) {
      expect((await visit('/once', { 'user-agent': agent }, method)).status, `${method} ${agent}`).toBe(410);
    }
  });

  it('purges raw clicks past their retention and keeps the rollups', async () => {
    await visit('/a', { 'user-agent': IPHONE });
    await clicks.ingest(sent);
    expect(await clicks.purge(new Date(Date.now() + 89 * 86_400_000), 90)).toBe(0);
    expect(await t.count('clicks')).toBe(1);
    expect(await clicks.purge(new Date(Date.now() + 91 * 86_400_000), 90)).toBe(1);
    expect(await t.count('clicks')).toBe(0);
    expect(await rollup('all')).toEqual([{ value: '', humans: 1, bots: 0 }]);
  });
});

describe('the consumer in a worker thread (embedded database on Node and Bun)', () => {
  it('stores through its own connection, exactly once, and closes', async () => {
    for (let i = 0; i < 120; i++) await visit('/a', { 'user-agent': i % 4 ? IPHONE : SLACK });
    const threaded = createThreadedClicks({ HOP_DATABASE_URL: `file:${t.dbPath}`, HOP_LOG_LEVEL: 'silent' }, createLogger({ level: 'silent' }));
    try {
      const [first, second] = await Promise.all([threaded.ingest(sent.slice(0, 100)), threaded.ingest(sent)]);
      expect(first).toEqual({ stored: 100, duplicates: 0, rejected: [], limited: [{ domain: 'localhost', slug: 'a' }] });
      expect(second).toEqual({ stored: 20, duplicates: 100, rejected: [], limited: [{ domain: 'localhost', slug: 'a' }] });
      expect(await threaded.ingest([{ kind: 'click' }, ...sent])).toMatchObject({ stored: 0, duplicates: 120, rejected: [{ index: 0 }] });
      expect(await linkClicks()).toBe(90);
      expect(await rollup('all')).toEqual([{ value: '', humans: 90, bots: 30 }]);
      expect(await threaded.purge(new Date(Date.now() + 91 * 86_400_000), 90)).toBe(120);
    } finally {
      await threaded.close();
    }
  });

  it('fails its calls with the reason when the thread cannot store, so the queue keeps the batch', async () => {
    await visit('/a', { 'user-agent': IPHONE });
    const threaded = createThreadedClicks({ HOP_DATABASE_URL: `file:${t.dbPath}.not-migrated`, HOP_LOG_LEVEL: 'silent' }, createLogger({ level: 'silent' }));
    await expect(threaded.ingest(sent)).rejects.toThrow(/no such table/);
    await threaded.close();
  });
});

describe('a full click queue', () => {
  it('refuses the redirect with 503 problem+json and Retry-After rather than lose its click, and serves again once drained', async () => {
    const stored: ClickEvent[] = [];
    const queue = createMemoryQueue<ClickEvent>({
      logger: createLogger({ level: 'silent' }),
      maxBatch: 1000,
      maxWaitMs: 60_000,
      maxBuffered: 2,
      handle: async (b) => (stored.push(...b), { rejected: [] }),
    });
    const full = await createTestApp({}, { clickQueue: queue });
    try {
      await full.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/a', slug: 'a' } });
      const go = (method = 'GET') => full.app.request('/a', { method, headers: { host: 'localhost:8787' } });
      expect((await go()).status).toBe(302);
      expect((await go('HEAD')).status).toBe(302);
      const refused = await go();
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.headers.get('location')).toBeNull();
      await expectProblem(refused, 503, 'overloaded');
      // An unknown slug's orphan visit is a click too: refused the same way, not lost.
      await expectProblem(await full.app.request('/nope', { headers: { host: 'localhost:8787' } }), 503, 'overloaded');
      // One warning for the episode, not one log line per refused request.
      expect(full.logs.filter((l) => l.includes('request refused'))).toEqual([]);
      await queue.flush();
      expect((await go()).status).toBe(302);
      await queue.close();
      // Every redirect served has its click stored; the refused ones have none.
      expect(stored).toHaveLength(3);
      expect(queue.stats()).toMatchObject({ delivered: 3, refused: 2, highWater: 2 });
    } finally {
      full.close();
    }
  });
});

describe('the in-process queue', () => {
  const logger = createLogger({ level: 'silent' });

  it('delivers in batches on size and on time, and everything on close', async () => {
    const batches: number[] = [];
    const q = createMemoryQueue<number>({ logger, maxBatch: 10, maxWaitMs: 50, handle: async (b) => (batches.push(b.length), { rejected: [] }) });
    for (let i = 0; i < 25; i++) q.send(i);
    await new Promise((r) => setTimeout(r, 120));
    expect(batches).toEqual([10, 10, 5]);
    for (let i = 0; i < 3; i++) q.send(i);
    await q.close();
    expect(batches).toEqual([10, 10, 5, 3]);
    expect(q.stats()).toMatchObject({ buffered: 0, delivered: 28 });
  });

  it('keeps a batch whose storage failed and delivers it once storage is back', async () => {
    const stored: number[] = [];
    let failing = 2;
    const q = createMemoryQueue<number>({
      logger,
      maxBatch: 5,
      maxWaitMs: 10,
      handle: async (b) => {
        if (failing-- > 0) throw new Error('database unavailable');
        stored.push(...b);
        return { rejected: [] };
      },
    });
    for (let i = 0; i < 5; i++) q.send(i);
    await q.close(3000);
    expect(stored).toEqual([0, 1, 2, 3, 4]);
    expect(q.stats()).toMatchObject({ failures: 2, delivered: 5, buffered: 0 });
  });

  it('hands several batches out at once when asked, each message exactly once, and keeps order otherwise', async () => {
    for (const maxInFlight of [1, 3]) {
      const seen: number[] = [];
      let open = 0;
      let most = 0;
      const q = createMemoryQueue<number>({
        logger,
        maxBatch: 10,
        maxWaitMs: 10,
        maxInFlight,
        handle: async (b) => {
          most = Math.max(most, ++open);
          await new Promise((r) => setTimeout(r, 5));
          open -= 1;
          seen.push(...b);
          return { rejected: [] };
        },
      });
      for (let i = 0; i < 95; i++) q.send(i);
      await q.close();
      expect(most).toBe(maxInFlight);
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 95 }, (_, i) => i));
      if (maxInFlight === 1) expect(seen).toEqual(Array.from({ length: 95 }, (_, i) => i));
      expect(q.stats()).toMatchObject({ buffered: 0, delivered: 95, refused: 0 });
    }
  });

  it('refuses what would overflow its bound (overloaded, with a retry-after), counts it, and takes messages again once drained', async () => {
    const stored: number[] = [];
    const q = createMemoryQueue<number>({
      logger,
      maxBatch: 1000,
      maxWaitMs: 10_000,
      maxBuffered: 3,
      handle: async (b) => (stored.push(...b), { rejected: [] }),
    });
    for (let i = 0; i < 3; i++) q.send(i);
    let refusal: unknown;
    try {
      q.send(3);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(AppError);
    expect(refusal).toMatchObject({ code: 'overloaded', retryAfterS: 1 });
    expect(q.stats()).toMatchObject({ buffered: 3, highWater: 3, refused: 1 });
    await q.flush();
    q.send(4);
    await q.close();
    // Nothing taken was lost, and the refused message was never taken.
    expect(stored).toEqual([0, 1, 2, 4]);
    expect(q.stats()).toMatchObject({ buffered: 0, delivered: 4, refused: 1, highWater: 3 });
  });

  it('grows its batches with the backlog, up to maxBatchUnderLoad, in order and each message once', async () => {
    const sizes: number[] = [];
    const seen: number[] = [];
    let release: () => void = () => {};
    const q = createMemoryQueue<number>({
      logger,
      maxBatch: 10,
      maxBatchUnderLoad: 1000,
      maxWaitMs: 10,
      maxBuffered: 10_000,
      handle: async (b) => {
        sizes.push(b.length);
        seen.push(...b);
        await new Promise<void>((r) => (release = r));
        return { rejected: [] };
      },
    });
    // The first batch is taken as soon as it is full; the rest gathers while it is being stored.
    for (let i = 0; i < 2510; i++) q.send(i);
    expect(sizes).toEqual([10]);
    for (let n = 1; n <= 3; n++) {
      release();
      await new Promise((r) => setTimeout(r, 0));
      expect(sizes).toHaveLength(n + 1);
    }
    release();
    await q.close();
    expect(sizes).toEqual([10, 1000, 1000, 500]);
    expect(seen).toEqual(Array.from({ length: 2510 }, (_, i) => i));
    expect(q.stats()).toMatchObject({ buffered: 0, delivered: 2510, batches: 4, largestBatch: 1000, highWater: 2510 });
  });
});

describe('daily rollups filled once a UTC day has closed', () => {
  const DAY = 86_400_000;
  const today = Date.now() - (Date.now() % DAY);
  const row = (at: number, country: string, bot = false): ClickRow => ({
    id: newId('clk'),
    workspaceId: t.workspaceId,
    linkId,
    at,
    country,
    device: 'mobile',
    browser: 'Safari',
    os: 'iOS',
    referrer: null,
    bot,
  });
  const watermark = async () => Number((await t.db.client.execute('select days_until from rollup_watermark')).rows[0]![0]);
  const days = async () =>
    (
      await t.db.client.execute({
        sql: "select day, dimension, value, humans, bots from click_days where link_id = ? and dimension in ('all', 'country') order by day, dimension, value",
        args: [linkId],
      })
    ).rows.map((r) => [Number(r[0]), r[1], r[2], Number(r[3]), Number(r[4])]);

  it('keeps today in the slots only, fills the closed days from them, adds late clicks to both, and reads the same', async () => {
    const repo = createClicksRepository(t.db.orm);
    const stats = createStatsRepository(t.db.orm);
    // Yesterday not closed yet, as after a quiet midnight: the next batch closes it.
    await t.db.client.execute({ sql: 'update rollup_watermark set days_until = ?', args: [today - DAY] });
    await repo.ingest([row(today - DAY + 3_600_000, 'DE'), row(today - DAY + 7_200_000, 'FR', true), row(today + 60_000, 'DE')], []);
    expect(await watermark()).toBe(today);
    // Yesterday filled once from its slots (not also from the batch), today not in the daily rollups.
    expect(await days()).toEqual([
      [today - DAY, 'all', '', 1, 1],
      [today - DAY, 'country', 'DE', 1, 0],
      [today - DAY, 'country', 'FR', 0, 1],
    ]);
    // A late click of a closed day goes to its day row at once; one of today again to the slots only.
    await repo.ingest([row(today - 2 * DAY + 60_000, 'DE'), row(today + 120_000, 'FR')], []);
    expect(await days()).toEqual([
      [today - 2 * DAY, 'all', '', 1, 0],
      [today - 2 * DAY, 'country', 'DE', 1, 0],
      [today - DAY, 'all', '', 1, 1],
      [today - DAY, 'country', 'DE', 1, 0],
      [today - DAY, 'country', 'FR', 0, 1],
    ]);
    const target = { workspaceId: t.workspaceId, linkId };
    expect(await stats.dayTotals(target, today - 3 * DAY, today + DAY)).toEqual([
      { slot: today - 2 * DAY, humans: 1, bots: 0 },
      { slot: today - DAY, humans: 1, bots: 1 },
      { slot: today, humans: 2, bots: 0 },
    ]);
    const countries = (await stats.daySums(target, today - 3 * DAY, today + DAY))
      .filter((r) => r.dimension === 'country')
      .sort((a, b) => a.value.localeCompare(b.value));
    expect(countries).toEqual([
      { dimension: 'country', value: 'DE', humans: 3, bots: 0 },
      { dimension: 'country', value: 'FR', humans: 1, bots: 1 },
    ]);
  });

  it('retries a batch when another consumer closed a day it counted as open', async () => {
    // The watermark goes past today between the batch's read and its write (a consumer whose clock is ahead): the
    // guard fails the write as a conflict, and the retry reads the new watermark and adds today to its day row.
    let moved = false;
    const runner = {
      execute: async (s: Parameters<typeof t.db.client.execute>[0]) => t.db.client.execute(s),
      batch: async (statements: Parameters<typeof t.db.client.batch>[0], mode: 'write') => {
        if (!moved) {
          moved = true;
          await t.db.client.execute({ sql: 'update rollup_watermark set days_until = ?', args: [today + DAY] });
        }
        return t.db.client.batch(statements, mode);
      },
    };
    const stored = await createClicksRepository(t.db.orm, runner).ingest([row(today + 60_000, 'DE')], []);
    expect(stored.clicks).toBe(1);
    expect(await days()).toEqual([
      [today, 'all', '', 1, 0],
      [today, 'country', 'DE', 1, 0],
    ]);
  });
});
