// The Redis Streams click queue with real parts: redis-server, the Upstash REST stand-in, @upstash/redis, and the
// clicks service over a libSQL file. Redirects go through the producer to the stream; consumers of one group store
// them. Counts must be exact through redeliveries, a crash between commit and acknowledgement, poison messages, an
// entry that always fails, a database outage and a Redis crash; what a Redis crash without persistence loses is
// shown, and that an append-only file keeps it.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { composeClicksService, startClickPipeline } from '../../src/composition/clicks.ts';
import { loadServerConfig, type ServerConfig } from '../../src/config.ts';
import type { ClickEvent } from '../../src/modules/clicks/clicks.schemas.ts';
import type { ClicksService } from '../../src/modules/clicks/clicks.service.ts';
import { createLogger } from '../../src/platform/logger.ts';
import type { MemoryQueue } from '../../src/platform/queue/memory.ts';
import type { BatchHandler } from '../../src/platform/queue/queue.ts';
import {
  createRedisStreamsConsumer,
  createRedisStreamsProducer,
  redriveDeadLetters,
  type RedisStreamsConsumer,
  type RedisStreamsConsumerOptions,
} from '../../src/platform/queue/redis-streams.ts';
import { createRedisRestClient } from '../../src/platform/redis.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { redisAvailable, startRedis, type RedisServer } from '../support/redis.ts';
import { startUpstashRest, type UpstashRest } from '../support/upstash-rest.ts';

const BROWSER = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15';
const logs: string[] = [];
const logger = createLogger({ level: 'warn', write: (line) => logs.push(line) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.runIf(redisAvailable())('the Redis Streams click queue', () => {
  let server: RedisServer;
  let rest: UpstashRest;
  let redis: ReturnType<typeof createRedisRestClient>;
  let t: TestApp;
  let clicks: ClicksService;
  let producer: MemoryQueue<ClickEvent>;
  let consumers: RedisStreamsConsumer[];
  let names: { stream: string; group: string; deadLetter: string };
  let testNumber = 0;

  beforeAll(async () => {
    server = await startRedis();
    rest = await startUpstashRest({ redisPort: server.port });
    redis = createRedisRestClient({ url: rest.url, token: rest.token, timeoutMs: 3000 });
  });
  afterAll(async () => {
    await rest?.close();
    await server?.stop();
  });

  beforeEach(async () => {
    testNumber += 1;
    names = { stream: `t${testNumber}:clicks`, group: 'hop-clicks', deadLetter: `t${testNumber}:clicks:dead` };
    consumers = [];
    producer = createRedisStreamsProducer<ClickEvent>({ redis, stream: names.stream, logger, maxWaitMs: 20 });
    t = await createTestApp({}, { clickQueue: producer });
    clicks = composeClicksService(t.db);
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', slug: 'n' } });
    linkId = ((await res.json()) as { id: string }).id;
  });
  afterEach(async () => {
    await Promise.all(consumers.map((c) => c.stop(500)));
    await producer.close(1000);
    t.close();
  });

  let linkId: string;
  const visit = () => t.app.request('/n', { headers: { host: 'localhost:8787', 'user-agent': BROWSER } });
  async function redirects(n: number) {
    for (let i = 0; i < n; i++) expect((await visit()).status).toBe(302);
  }
  async function linkClicks() {
    const res = await t.request(`/v1/links/${linkId}`);
    return ((await res.json()) as { clicks: number }).clicks;
  }
  const stored = () => t.count('clicks');

  function consumer(options: Partial<RedisStreamsConsumerOptions> = {}) {
    const c = createRedisStreamsConsumer({
      redis,
      ...names,
      logger,
      handle: (batch) => clicks.ingest(batch),
      blockMs: 100,
      retryBaseMs: 20,
      retryMaxMs: 200,
      ...options,
    });
    consumers.push(c);
    c.start();
    return c;
  }

  const streamLength = async () => Number(await redis.xlen(names.stream));
  /** Messages in the stream: a batch entry (`b`) holds many, a single one (`m`) one. */
  async function streamMessages(client = redis) {
    const entries = (await client.exec(['XRANGE', names.stream, '-', '+'])) as Array<[string, string[]]>;
    return entries.reduce((n, [, fields]) => n + (fields[0] === 'b' ? (JSON.parse(fields[1]!) as unknown[]).length : 1), 0);
  }
  async function pending() {
    const summary = (await redis.exec(['XPENDING', names.stream, names.group])) as [number, ...unknown[]];
    return Number(summary[0]);
  }
  async function deadLetters() {
    const entries = (await redis.exec(['XRANGE', names.deadLetter, '-', '+'])) as Array<[string, string[]]>;
    return entries.map(([, list]) => {
      const fields = Object.fromEntries(list.flatMap((v, i) => (i % 2 ? [] : [[v, list[i + 1]!]])));
      return {
        m: fields.m!,
        ...(fields.kind === undefined ? {} : { kind: fields.kind }),
        reason: fields.reason!,
        deliveries: Number(fields.deliveries),
        ...(fields.index === undefined ? {} : { index: Number(fields.index) }),
      };
    });
  }
  /** Everything sent so far is in the stream (so a consumer started now reads it at once); resolves with its entries. */
  async function inStream(n: number) {
    await producer.flush();
    expect(await streamMessages()).toBe(n);
    return streamLength();
  }
  /** The stream is empty and nothing is pending: every entry was stored (or dead-lettered) and acknowledged. */
  async function drained() {
    return (await streamLength()) === 0 && (await pending()) === 0;
  }

  it('stores N redirects exactly once across two consumers of the group, and leaves the stream empty', async () => {
    const a = consumer();
    const b = consumer();
    await redirects(250);
    await waitFor('250 stored', async () => (await stored()) === 250 && (await drained()));
    expect(await linkClicks()).toBe(250);
    expect(a.stats().acked + b.stats().acked).toBe(250);
    expect(producer.stats()).toMatchObject({ delivered: 250, buffered: 0, refused: 0 });
    expect(await deadLetters()).toEqual([]);
  });

  it('sends what has gathered as entries of at most 100 messages, several in one request, each stored once', async () => {
    const bulk = createRedisStreamsProducer<ClickEvent>({ redis, stream: names.stream, logger, maxWaitMs: 60_000 });
    t.close();
    t = await createTestApp({}, { clickQueue: bulk });
    clicks = composeClicksService(t.db);
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', slug: 'n' } });
    linkId = ((await res.json()) as { id: string }).id;
    try {
      await redirects(250);
      expect(await streamLength()).toBe(0); // still gathering: the first message waits up to maxWaitMs
      const before = rest.stats().requests;
      await bulk.flush();
      const after = rest.stats().requests;
      expect((after['/pipeline'] ?? 0) - (before['/pipeline'] ?? 0)).toBe(1);
      expect(after['/']).toBe(before['/']);
      const entries = (await redis.exec(['XRANGE', names.stream, '-', '+'])) as Array<[string, string[]]>;
      expect(entries.map(([, fields]) => (JSON.parse(fields[1]!) as unknown[]).length)).toEqual([100, 100, 50]);
      consumer();
      await waitFor('250 stored', async () => (await stored()) === 250 && (await drained()));
      expect(await linkClicks()).toBe(250);
      expect(bulk.stats()).toMatchObject({ delivered: 250, buffered: 0, refused: 0 });
    } finally {
      await bulk.close(1000);
    }
  });

  it('counts an entry once however often it is in the stream (a producer retry after a lost answer)', async () => {
    const sent: ClickEvent[] = [];
    const twice = { send: (e: ClickEvent) => (sent.push(e), producer.send(e), producer.send(e)) };
    t.close();
    t = await createTestApp({}, { clickQueue: twice });
    clicks = composeClicksService(t.db);
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', slug: 'n' } });
    linkId = ((await res.json()) as { id: string }).id;
    const c = consumer();
    await redirects(60);
    await waitFor('120 entries acknowledged', async () => c.stats().acked === 120 && (await drained()));
    expect(await stored()).toBe(60);
    expect(await linkClicks()).toBe(60);
  });

  it('a consumer that dies between its commit and its acknowledgement: another takes the entries over, counts unchanged', async () => {
    let committed = 0;
    // Stores the batch, then never answers: the process froze or died after COMMIT and before XACK.
    const crashing: BatchHandler<unknown> = async (batch) => {
      const result = await clicks.ingest(batch);
      committed += result.stored;
      return new Promise(() => {});
    };
    await redirects(40);
    const entries = await inStream(40);
    consumer({ handle: crashing, claimIdleMs: 60_000 });
    await waitFor('the batch committed by the first consumer', () => committed === 40);
    expect(await pending()).toBe(entries);
    expect(await linkClicks()).toBe(40);

    const survivor = consumer({ claimIdleMs: 300 });
    await waitFor('the survivor to take over and acknowledge', async () => survivor.stats().acked === 40 && (await drained()));
    expect(survivor.stats().claimed).toBe(entries);
    expect(await stored()).toBe(40);
    expect(await linkClicks()).toBe(40);
    expect(await deadLetters()).toEqual([]);
  });

  it('removes the name of a consumer that died once it holds nothing and has been silent long enough', async () => {
    await redis.xgroup(names.stream, { type: 'CREATE', group: names.group, id: '0', options: { MKSTREAM: true } });
    await redis.xgroup(names.stream, { type: 'CREATECONSUMER', group: names.group, consumer: 'died-long-ago' });
    const consumerNames = async () =>
      ((await redis.xinfo(names.stream, { type: 'CONSUMERS', group: names.group })) as unknown[][]).map((c) => c[1]);
    const c = consumer({ claimIdleMs: 1000, forgetAfterMs: 300 });
    await waitFor('the dead name removed', async () => {
      const list = await consumerNames();
      return !list.includes('died-long-ago') && list.includes(c.name);
    });
  });

  it('a handler that commits and then fails is retried by the same consumer without counting twice', async () => {
    let failures = 1;
    const c = consumer({
      handle: async (batch) => {
        const result = await clicks.ingest(batch);
        if (failures-- > 0) throw new Error('connection reset after COMMIT');
        return result;
      },
    });
    await redirects(30);
    await waitFor('acknowledged after the retry', async () => c.stats().acked === 30 && (await drained()));
    expect(c.stats().handlerFailures).toBe(1);
    expect(await linkClicks()).toBe(30);
  });

  it('dead-letters poison messages with their reason and stores the rest of their batch', async () => {
    await redis.xgroup(names.stream, { type: 'CREATE', group: names.group, id: '0', options: { MKSTREAM: true } });
    await redirects(3);
    await producer.flush();
    await redis.xadd(names.stream, '*', { m: 'not json {' });
    await redis.xadd(names.stream, '*', { m: JSON.stringify({ v: 1, kind: 'click', id: 'nope' }) });
    await redis.xadd(names.stream, '*', { other: 'field' });
    await redis.xadd(names.stream, '*', { b: JSON.stringify({ not: 'an array' }) });
    // A poison message inside a batch entry, between two real clicks of the same entry.
    await visit();
    producer.send({ v: 1, kind: 'click', id: 'nope-in-batch' } as unknown as ClickEvent);
    await visit();
    await producer.flush();
    const c = consumer();
    await waitFor('the batch handled', async () => c.stats().acked + c.stats().deadLettered === 10 && (await drained()));
    expect(await stored()).toBe(5);
    const dead = await deadLetters();
    expect(dead).toHaveLength(5);
    expect(dead).toEqual(
      expect.arrayContaining([
        { m: 'not json {', kind: 'refused', reason: 'not JSON', deliveries: 1 },
        { m: '', kind: 'refused', reason: 'no "m" or "b" field', deliveries: 1 },
        { m: '{"not":"an array"}', kind: 'refused', reason: 'not a JSON array', deliveries: 1 },
        { m: expect.stringContaining('"nope"'), kind: 'refused', reason: expect.stringMatching(/^id: Invalid string/), deliveries: 1 },
        { m: expect.stringContaining('"nope-in-batch"'), kind: 'refused', reason: expect.stringMatching(/^id: Invalid string/), deliveries: 1, index: 1 },
      ]),
    );
    expect(c.stats()).toMatchObject({ deadLettered: 5, acked: 5 });
  });

  it('dead-letters a message that always fails after N deliveries, alone: its batch-mates are stored', async () => {
    const sent: ClickEvent[] = [];
    const spy = { send: (e: ClickEvent) => (sent.push(e), producer.send(e)) };
    t.close();
    t = await createTestApp({}, { clickQueue: spy });
    clicks = composeClicksService(t.db);
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', slug: 'n' } });
    linkId = ((await res.json()) as { id: string }).id;
    await redirects(10);
    await inStream(10);
    const bad = sent[4]!.id;
    let attemptsWithBad = 0;
    const c = consumer({
      maxDeliveries: 3,
      handle: async (batch) => {
        if (batch.some((m) => (m as ClickEvent).id === bad)) {
          attemptsWithBad += 1;
          throw new Error('this entry breaks the database');
        }
        return clicks.ingest(batch);
      },
    });
    await waitFor('the bad message dead-lettered', async () => c.stats().deadLettered === 1 && (await drained()));
    expect(await stored()).toBe(9);
    expect(await linkClicks()).toBe(9);
    // Three deliveries of its entry, then its messages one by one: the fourth try is the bad one alone.
    expect(attemptsWithBad).toBe(4);
    const [dead] = await deadLetters();
    expect(dead).toMatchObject({ kind: 'given-up', reason: 'not stored after 3 deliveries', deliveries: 4, index: 4 });
    expect(JSON.parse(dead!.m)).toMatchObject({ id: bad });

    // Storage is fixed: the operator puts the given-up click back (hop redrive). A message refused for what it is
    // stays unless asked for, and then is refused again. This one was written before dead letters had a kind: its
    // reason says it.
    await redis.xadd(names.deadLetter, '*', { m: 'not json {', id: '0-1', reason: 'not JSON', deliveries: 1, stream: names.stream });
    await c.stop(1000);
    const healthy = consumer({ maxDeliveries: 3 });
    expect(await redriveDeadLetters({ redis, ...names, limit: 100 })).toEqual({ redriven: 1, kept: 1 });
    await waitFor('the redriven click stored', async () => (await stored()) === 10 && (await drained()));
    expect(await linkClicks()).toBe(10);
    expect((await deadLetters()).map((d) => d.reason)).toEqual(['not JSON']);
    expect(await redriveDeadLetters({ redis, ...names, limit: 100, all: true })).toEqual({ redriven: 1, kept: 0 });
    await waitFor('refused again', async () => healthy.stats().deadLettered === 1 && (await drained()));
    expect((await deadLetters()).map((d) => d.reason)).toEqual(['not JSON']);
    expect(await stored()).toBe(10);
  });

  it('while the database is down nothing is acknowledged and retries back off; once it is back everything is stored once', async () => {
    let down = true;
    let attempts = 0;
    await redirects(1);
    await inStream(1);
    const c = consumer({
      maxDeliveries: 50,
      handle: async (batch) => {
        attempts += 1;
        if (down) throw new Error('SQLITE_BUSY: database is locked');
        return clicks.ingest(batch);
      },
    });
    await waitFor('a failure', () => c.stats().handlerFailures >= 1);
    // The waits double (20 ms up to 200 ms here): over a second the database is asked a handful of times, not fifty.
    const before = attempts;
    await sleep(1000);
    expect(attempts - before).toBeLessThanOrEqual(10);
    await redirects(49);
    await producer.flush();
    // Nothing acknowledged, and nothing new read while failing: the rest waits in the stream, not in the consumer.
    expect(await stored()).toBe(0);
    expect(await streamMessages()).toBe(50);
    expect(await pending()).toBe(1);
    down = false;
    await waitFor('50 stored', async () => (await stored()) === 50 && (await drained()));
    expect(await linkClicks()).toBe(50);
    expect(await deadLetters()).toEqual([]);
  });

  it('stops cleanly: the batch in hand is stored and acknowledged before stop resolves', async () => {
    let started = false;
    await redirects(20);
    await inStream(20);
    const c = consumer({
      handle: async (batch) => {
        started = true;
        await sleep(300);
        return clicks.ingest(batch);
      },
    });
    await waitFor('the handler to start', () => started);
    await c.stop(5000);
    expect(await stored()).toBe(20);
    expect(await pending()).toBe(0);
    const groups = (await redis.exec(['XINFO', 'CONSUMERS', names.stream, names.group])) as unknown[];
    expect(groups).toEqual([]); // it left the group, having nothing pending
  });

  it('rides out a Redis crash: the producer keeps what Redis refused and sends it after the restart', async () => {
    const c = consumer();
    await redirects(100);
    await waitFor('100 stored', async () => (await stored()) === 100);

    await server.kill();
    await redirects(100); // the redirect never waits: these stay in the producer's buffer
    await waitFor('the producer to fail', () => producer.stats().failures >= 1);
    await waitFor('the consumer to fail', () => c.stats().redisFailures >= 1);
    expect(producer.stats().buffered).toBe(100);

    await server.restart();
    // The restarted Redis is empty (no persistence): the consumer makes the group again, the producer resends.
    await waitFor('200 stored', async () => (await stored()) === 200 && (await drained()), 20_000);
    expect(await linkClicks()).toBe(200);
    expect(producer.stats()).toMatchObject({ buffered: 0, refused: 0, delivered: 200 });
  });

  it('a Redis crash without persistence loses what was in the stream and not yet stored; an append-only file keeps it', async () => {
    for (const persistence of ['none', 'aof'] as const) {
      const own = await startRedis({ persistence });
      const ownRest = await startUpstashRest({ redisPort: own.port });
      const client = createRedisRestClient({ url: ownRest.url, token: ownRest.token });
      const ownProducer = createRedisStreamsProducer<ClickEvent>({ redis: client, stream: names.stream, logger, maxWaitMs: 20 });
      const app = await createTestApp({}, { clickQueue: ownProducer });
      try {
        const service = composeClicksService(app.db);
        const res = await app.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', slug: 'p' } });
        expect(res.status).toBe(201);
        for (let i = 0; i < 50; i++) await app.app.request('/p', { headers: { host: 'localhost:8787', 'user-agent': BROWSER } });
        await ownProducer.flush();
        expect(await streamMessages(client)).toBe(50); // accepted by Redis, no consumer yet

        await own.kill('SIGKILL');
        await own.restart();
        const c = createRedisStreamsConsumer({ redis: client, ...names, logger, handle: (b) => service.ingest(b), blockMs: 100 });
        c.start();
        await sleep(1500);
        await c.stop();
        expect(await app.count('clicks')).toBe(persistence === 'aof' ? 50 : 0);
      } finally {
        await ownProducer.close(500);
        app.close();
        await ownRest.close();
        await own.stop();
      }
    }
  });

  it('refuses a wrong token at start, naming HOP_REDIS_TOKEN; starts with Redis down and sends once it is up', async () => {
    const pipelineOf = (store: ClicksService) => ({
      produce: true,
      consume: true,
      store,
      invalidation: { links: async () => {}, clicksStored: () => {} },
      logger,
    });
    const env = (token: string): ServerConfig =>
      loadServerConfig({ HOP_QUEUE: 'redis', HOP_REDIS_URL: rest.url, HOP_REDIS_TOKEN: token, HOP_QUEUE_STREAM: names.stream });
    await expect(startClickPipeline(env('wrong-token'), pipelineOf(clicks))).rejects.toThrow(
      /HOP_REDIS_TOKEN: refused by http:\/\/127\.0\.0\.1:\d+ \(unauthorized\)/,
    );

    await server.kill();
    const pipeline = await startClickPipeline(env(rest.token), pipelineOf(clicks));
    try {
      expect(pipeline.description).toMatch(/^redis streams \(producer, consumer .+\)$/);
      expect(logs.some((l) => l.includes('click queue unreachable at start'))).toBe(true);
      await server.restart();
      const app = await createTestApp({}, { clickQueue: pipeline.queue });
      // A link in this app's database would not be seen by `clicks` (another file): count orphan visits instead.
      await app.app.request('/nowhere', { headers: { host: 'localhost:8787', 'user-agent': BROWSER } });
      app.close();
      await waitFor('the visit stored', async () => (await t.count('orphan_visits')) === 1, 15_000);
    } finally {
      await pipeline.close();
    }
  });
});
