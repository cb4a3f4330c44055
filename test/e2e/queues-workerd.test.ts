// The click consumer under real Cloudflare Queues semantics: wrangler's test harness runs, in one workerd, the
// redirect Worker (wrangler.toml, whose CLICKS producer the test sends through), the click consumer
// (wrangler.consumer.toml, with its own batch, retry and dead-letter settings) and a small Worker that keeps what
// reaches the dead-letter queue (test/workers/fixtures/dead-letters.ts), over a real sqld this test can kill.
// Miniflare's queue broker delivers, acknowledges, retries with the requested delay and dead-letters as Queues do.
import { createClient, type Client } from '@libsql/client';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestHarness, type TestHarness } from 'wrangler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqldHandle, type SqldHandle } from '../blackbox/targets.ts';
import { sqldAvailable } from '../support/sqld.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADMIN = 'q'.repeat(40);
const DAY_MS = 86_400_000;

interface Producer {
  sendBatch(messages: Array<{ body: unknown; contentType: 'json' }>): Promise<void>;
}
interface Kv {
  list(): Promise<{ keys: Array<{ name: string }> }>;
  get(key: string): Promise<string | null>;
}
interface DeadLetter {
  queue: string;
  attempts: number;
  body: { deadLetter: { reason: string; queue: string; messageId: string; attempts: number }; body: unknown };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await sleep(100);
    value = await read();
  }
  return value;
}

describe.skipIf(!sqldAvailable())('the click consumer on Cloudflare Queues (workerd, Miniflare queue broker, sqld)', () => {
  let dir: string;
  let sqld: SqldHandle;
  let harness: TestHarness;
  let clicksQueue: Producer;
  let deadLetters: Kv;
  let db: Client;
  let workspaceId: string;
  let apiKey: string;

  beforeAll(async () => {
    // Offline: no request.cf lookup, no telemetry.
    process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';
    process.env.WRANGLER_SEND_METRICS = 'false';
    dir = mkdtempSync(join(tmpdir(), 'hop-queues-'));
    sqld = await sqldHandle(join(dir, 'sqld'));
    await promisify(execFile)(process.execPath, [join(ROOT, 'src/cli/hop.ts'), 'migrate'], {
      cwd: ROOT,
      env: { ...process.env, HOP_DATABASE_URL: sqld.url, HOP_LOG_LEVEL: 'warn' },
    });
    db = createClient({ url: sqld.url });
    harness = createTestHarness({
      root: ROOT,
      workers: [
        {
          configPath: 'wrangler.toml',
          vars: { HOP_LOG_LEVEL: 'warn', HOP_BASE_URL: 'http://localhost' },
          secrets: { HOP_DATABASE_URL: sqld.url, HOP_ADMIN_TOKEN: ADMIN },
        },
        { configPath: 'wrangler.consumer.toml', vars: { HOP_LOG_LEVEL: 'debug' }, secrets: { HOP_DATABASE_URL: sqld.url } },
        {
          config: {
            name: 'dead-letters',
            main: 'test/workers/fixtures/dead-letters.ts',
            compatibility_date: '2026-11-01',
            kv_namespaces: [{ binding: 'DEAD', id: 'dead-letters' }],
            queues: { consumers: [{ queue: 'hop-clicks-dead', max_batch_size: 100, max_batch_timeout: 0 }] },
          },
        },
      ],
    });
    await harness.listen();
    clicksQueue = (await harness.getWorker<{ CLICKS: Producer }>().getEnv()).CLICKS;
    deadLetters = (await harness.getWorker<{ DEAD: Kv }>('dead-letters').getEnv()).DEAD;

    const res = await harness.fetch('http://localhost/v1/workspaces', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'queues' }),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; apiKey: { key: string } };
    workspaceId = created.id;
    apiKey = created.apiKey.key;
  }, 90_000);

  afterAll(async () => {
    await harness?.close();
    db?.close();
    await sqld?.current.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  async function newLink(): Promise<string> {
    const res = await harness.fetch('http://localhost/v1/links', {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://example.com/' }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  }

  /**
   * A click event as the redirect Worker makes it (clicks.events.ts), by a browser: its id is a UUIDv7 of the
   * event's time (the purge finds old clicks by that id).
   */
  const event = (linkId: string, at = Date.now()) => ({
    v: 1,
    kind: 'click',
    id: `clk_${at.toString(16).padStart(12, '0')}7${crypto.randomUUID().replaceAll('-', '').slice(0, 19)}`,
    at,
    workspaceId,
    linkId,
    country: 'NL',
    userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15',
    referrer: null,
    head: false,
  });

  const send = (bodies: unknown[]) => clicksQueue.sendBatch(bodies.map((body) => ({ body, contentType: 'json' })));

  /** The link's count (humans) and its raw click rows, straight from sqld. */
  async function counts(linkId: string) {
    const rs = await db.execute({
      sql: 'select (select clicks from links where id = ?) as clicks, (select count(*) from clicks where link_id = ?) as raw',
      args: [linkId, linkId],
    });
    return { clicks: Number(rs.rows[0]!.clicks), raw: Number(rs.rows[0]!.raw) };
  }

  /** The consumer's JSON log lines with this message, from the workerd logs the harness captured. */
  function consumerLogs(msg: string): Array<Record<string, unknown>> {
    return harness
      .getLogs()
      .flatMap((log) => log.message.split('\n'))
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.msg === msg);
  }

  async function deadLetterBodies(): Promise<DeadLetter[]> {
    const { keys } = await deadLetters.list();
    return Promise.all(keys.map(async ({ name }) => JSON.parse((await deadLetters.get(name))!) as DeadLetter));
  }

  it('stores a batch once however often it is delivered', async () => {
    const link = await newLink();
    const events = Array.from({ length: 60 }, () => event(link));
    await send(events);
    expect(await waitFor(() => counts(link), (c) => c.clicks >= 60)).toEqual({ clicks: 60, raw: 60 });

    // The same 60 again (what a redelivery hands the consumer), with one new event sent twice in the same batch.
    const fresh = event(link);
    await send([...events, fresh, fresh]);
    expect(await waitFor(() => counts(link), (c) => c.raw >= 61)).toEqual({ clicks: 61, raw: 61 });
    const batches = await waitFor(async () => consumerLogs('click batch stored').filter((l) => l.size === 62), (l) => l.length > 0);
    expect(batches).toEqual([expect.objectContaining({ stored: 1, duplicates: 61, rejected: 0 })]);
    await sleep(2500);
    expect(await counts(link)).toEqual({ clicks: 61, raw: 61 });
  }, 30_000);

  it('sends a poison message to the dead-letter queue with its reason and stores the rest of its batch', async () => {
    const link = await newLink();
    const valid = Array.from({ length: 10 }, () => event(link));
    const badId = { ...event(link), id: 'not-a-click-id' };
    const deadBefore = (await deadLetterBodies()).length;
    const loggedBefore = consumerLogs('click event dead-lettered').length;
    await send([...valid.slice(0, 5), badId, 'just a string', ...valid.slice(5)]);

    const dead = await waitFor(deadLetterBodies, (d) => d.length >= deadBefore + 2);
    expect(dead).toHaveLength(deadBefore + 2);
    const byBody = new Map(dead.map((d) => [JSON.stringify(d.body.body), d]));
    const first = byBody.get(JSON.stringify(badId))!;
    expect(first.queue).toBe('hop-clicks-dead');
    expect(first.body.deadLetter).toMatchObject({ queue: 'hop-clicks', attempts: 1 });
    expect(first.body.deadLetter.reason).toMatch(/^id: /);
    expect(byBody.get('"just a string"')!.body.deadLetter.reason).toMatch(/\(root\)/);
    expect(await waitFor(() => counts(link), (c) => c.clicks >= 10)).toEqual({ clicks: 10, raw: 10 });

    // Acknowledged, not retried: past the first retry delay (2 s) nothing came back.
    await sleep(3000);
    expect(await deadLetterBodies()).toHaveLength(deadBefore + 2);
    expect(consumerLogs('click event dead-lettered')).toHaveLength(loggedBefore + 2);
    expect(consumerLogs('click batch stored').filter((l) => l.rejected === 2)).toHaveLength(1);
    expect(await counts(link)).toEqual({ clicks: 10, raw: 10 });
  }, 30_000);

  it('keeps retrying a batch while sqld is down and stores it exactly once when sqld is back', async () => {
    const link = await newLink();
    const failuresBefore = consumerLogs('click batch not stored; Queues will deliver it again').length;
    const deadBefore = (await deadLetterBodies()).length;
    sqld.current.signal('SIGKILL');
    await new Promise((r) => sqld.current.child.once('exit', r));
    const events = Array.from({ length: 40 }, () => event(link));
    await send(events);

    // The consumer crashes on the storage and Queues delivers the batch again after the delay it asked for.
    const failures = await waitFor(
      async () => consumerLogs('click batch not stored; Queues will deliver it again').slice(failuresBefore),
      (f) => f.length >= 2,
    );
    expect(failures.slice(0, 2)).toEqual([
      expect.objectContaining({ size: 40, attempts: 1, retryInS: 2 }),
      expect.objectContaining({ size: 40, attempts: 2, retryInS: 4 }),
    ]);
    // The broker waited the delay the consumer asked for before the second delivery.
    const gapMs = Date.parse(failures[1]!.time as string) - Date.parse(failures[0]!.time as string);
    expect(gapMs).toBeGreaterThanOrEqual(1900);
    expect(gapMs).toBeLessThan(3500);
    await sqld.restart();
    expect(await waitFor(() => counts(link), (c) => c.clicks >= 40)).toEqual({ clicks: 40, raw: 40 });
    // The logs reach the harness a moment after the rows reach sqld.
    const stored = await waitFor(async () => consumerLogs('click batch stored').filter((l) => l.size === 40), (l) => l.length > 0);
    expect(stored).toEqual([expect.objectContaining({ stored: 40, duplicates: 0 })]);
    expect(stored[0]!.attempts).toBeGreaterThanOrEqual(3);
    await sleep(2500);
    expect(await counts(link)).toEqual({ clicks: 40, raw: 40 });
    expect(await deadLetterBodies()).toHaveLength(deadBefore);
  }, 45_000);

  it('purges raw clicks past HOP_CLICK_RETENTION_DAYS on its cron and keeps the counts', async () => {
    const link = await newLink();
    const old = Array.from({ length: 5 }, () => event(link, Date.now() - 91 * DAY_MS));
    const recent = Array.from({ length: 3 }, () => event(link));
    await send([...old, ...recent]);
    expect(await waitFor(() => counts(link), (c) => c.clicks >= 8)).toEqual({ clicks: 8, raw: 8 });

    const consumer = harness.getWorker('hop-clicks-consumer');
    expect(await consumer.scheduled({ cron: '17 * * * *', scheduledTime: new Date() })).toMatchObject({ outcome: 'ok' });
    // The raw rows past 90 days are gone; the link's count (and the rollups behind the statistics) stay.
    expect(await counts(link)).toEqual({ clicks: 8, raw: 3 });
    expect(await waitFor(async () => consumerLogs('raw clicks purged'), (l) => l.length > 0)).toEqual([
      expect.objectContaining({ removed: 5, retentionDays: 90 }),
    ]);

    // With the database down the run fails (Cron Events show it), and the next run catches up.
    sqld.current.signal('SIGKILL');
    await new Promise((r) => sqld.current.child.once('exit', r));
    try {
      expect(await consumer.scheduled({ cron: '17 * * * *', scheduledTime: new Date() })).toMatchObject({ outcome: 'exception' });
      expect(await waitFor(async () => consumerLogs('click purge failed'), (l) => l.length > 0)).toHaveLength(1);
    } finally {
      await sqld.restart();
    }
  }, 30_000);
});
