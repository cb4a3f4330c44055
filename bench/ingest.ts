/**
 * `npm run bench` (second part): click ingestion, events per second from the queue to committed rollups. Seeds
 * 1,000 links, makes 100,000 click events like the redirect does (Zipf over the links, a mix of user agents with
 * bots, countries, referrers, spread over a day), pushes them through the in-process queue into the clicks service
 * (batches of 100, the size at low load, and of 1,000, the size under load), and waits until every batch is
 * committed; then checks that the database counts exactly the events sent. Runs on the embedded libSQL file and on
 * a local sqld, a fresh database for each row.
 *
 * Beside each row, on the same database: the raw client (`@libsql/client` alone, no hop) inserting the same events
 * bare into a table without indexes, in the row's batch size (one multi-row statement per request); and the raw
 * client's batched-insert ceiling: the best of that at 1,000 rows per request, with the rows bound one by one or
 * as one JSON argument (the form hop's consumer uses).
 *
 * Environment: BENCH_INGEST_EVENTS (default 100000), BENCH_INGEST_BATCH (default `100,1000`: each size a row; every
 * batch that size, the queue's growth under load held at it, so that sizes can be compared).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@libsql/client';
import { findSqld, startSqld } from '../src/cli/sqld.ts';
import { loadServerConfig } from '../src/config.ts';
import { composeClicksService, startClickPipeline } from '../src/composition/clicks.ts';
import type { ClickEvent } from '../src/modules/clicks/clicks.schemas.ts';
import { newId } from '../src/platform/crypto.ts';
import { createLogger } from '../src/platform/logger.ts';
import { embeddedPath, isEmbedded, openDatabase } from '../src/runtimes/database.ts';
import { createEmbeddedWriter } from '../src/runtimes/embedded-writer.ts';
import { zipfSample } from './mix.ts';
import { seedDatabase } from './seed.ts';

const EVENTS = Number(process.env.BENCH_INGEST_EVENTS ?? 100_000);
const BATCHES = (process.env.BENCH_INGEST_BATCH ?? '100,1000').split(',').map(Number);
const CEILING_ROWS = 1000;
const LINKS = 1_000;
const TARGET_EVENTS_PER_S = 50_000;

const AGENTS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
];
const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'IN', 'BR', 'JP', 'CA', 'ES', 'IT', 'NL', 'SE', 'PL', 'MX', 'AU', null];
const REFERRERS = ['news.ycombinator.com', 'twitter.com', 't.co', 'www.google.com', 'www.reddit.com', 'mail.example.org', null, null];

function makeEvents(workspaceId: string, linkIds: string[]): ClickEvent[] {
  const { draws } = zipfSample(linkIds.length, 1.1, EVENTS);
  const start = Date.now() - 86_400_000;
  return draws.map((n, i) => ({
    v: 1,
    kind: 'click',
    id: newId('clk'),
    at: start + Math.floor((i / EVENTS) * 86_400_000),
    workspaceId,
    linkId: linkIds[n - 1]!,
    country: COUNTRIES[i % COUNTRIES.length]!,
    userAgent: AGENTS[(i * 7) % AGENTS.length]!,
    referrer: REFERRERS[(i * 3) % REFERRERS.length]!,
    head: false,
  }));
}

interface Row {
  target: string;
  batch: number;
  eventsPerS: number;
  usPerEvent: number;
  /** The raw client, bare rows, in the row's batch size. */
  baselinePerS: number;
  /** The raw client's best at CEILING_ROWS rows per request. */
  ceilingPerS: number;
}

type Click = Extract<ClickEvent, { kind: 'click' }>;
const bareValues = (e: Click) => [e.id, e.workspaceId, e.linkId, e.at, e.country, e.userAgent, e.referrer];

/**
 * The raw client (no hop, no guard) inserting `events` bare into a new table without indexes, `perRequest` rows a
 * statement and a request: bound one by one (`values`) or as one JSON argument (`json`). Events per second.
 */
async function rawInserts(url: string, events: Click[], perRequest: number, form: 'values' | 'json'): Promise<number> {
  const client = createClient({ url });
  const table = `bench_bare_${form}_${perRequest}`;
  try {
    await client.execute(`create table ${table} (id text, workspace_id text, link_id text, at integer, country text, user_agent text, referrer text)`);
    const start = performance.now();
    for (let i = 0; i < events.length; i += perRequest) {
      const part = events.slice(i, i + perRequest);
      await client.execute(
        form === 'values'
          ? { sql: `insert into ${table} values ${part.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`, args: part.flatMap(bareValues) }
          : {
              sql: `insert into ${table} select value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 from json_each(?)`,
              args: [JSON.stringify(part.map(bareValues))],
            },
      );
    }
    const seconds = (performance.now() - start) / 1000;
    const n = Number((await client.execute(`select count(*) as n from ${table}`)).rows[0]!.n);
    if (n !== events.length) throw new Error(`raw client stored ${n} of ${events.length} rows in ${table}`);
    return events.length / seconds;
  } finally {
    client.close();
  }
}

async function measure(target: string, databaseUrl: string, batch: number): Promise<Row> {
  const { workspaceId } = await seedDatabase(databaseUrl, LINKS);
  const config = loadServerConfig({ HOP_DATABASE_URL: databaseUrl, HOP_LOG_LEVEL: 'silent' });
  const db = await openDatabase(config);
  // As the server stores them: an embedded file through the click thread's prepared-statement writer.
  const writer = isEmbedded(databaseUrl)
    ? createEmbeddedWriter(embeddedPath(databaseUrl), { busyTimeoutMs: config.databaseBusyTimeoutMs, syncEachCommit: false })
    : undefined;
  try {
    const linkIds = (await db.client.execute('select id from links order by slug')).rows.map((r) => r[0] as string);
    const events = makeEvents(workspaceId, linkIds);
    const clicks = events as Click[];
    const baselinePerS = await rawInserts(databaseUrl, clicks, batch, 'values');
    const ceilingPerS = Math.max(
      batch === CEILING_ROWS ? baselinePerS : await rawInserts(databaseUrl, clicks, CEILING_ROWS, 'values'),
      await rawInserts(databaseUrl, clicks, CEILING_ROWS, 'json'),
    );

    const pipeline = await startClickPipeline(config, {
      produce: true,
      consume: true,
      store: composeClicksService(db, writer),
      invalidation: { links: async () => {}, clicksStored: () => {} },
      logger: createLogger({ level: 'silent' }),
      memoryQueue: { maxBatch: batch, maxBatchUnderLoad: batch, maxBuffered: EVENTS },
    });
    const queue = pipeline.queue!;
    const start = performance.now();
    for (const e of events) queue.send(e);
    await queue.flush();
    const seconds = (performance.now() - start) / 1000;
    const s = queue.stats();
    if (s.buffered || s.refused || s.failures) throw new Error(`${target}: queue ended with ${JSON.stringify(s)}`);
    await pipeline.close();

    const rs = await db.client.execute(
      "select (select count(*) from clicks) as raw, (select sum(humans) + sum(bots) from click_totals) as rolled",
    );
    const { raw, rolled } = rs.rows[0] as unknown as { raw: number; rolled: number };
    if (Number(raw) !== EVENTS || Number(rolled) !== EVENTS) throw new Error(`${target}: stored ${raw} clicks, rolled up ${rolled}, sent ${EVENTS}`);
    return { target, batch, eventsPerS: EVENTS / seconds, usPerEvent: (seconds * 1e6) / EVENTS, baselinePerS, ceilingPerS };
  } finally {
    writer?.close();
    db.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'hop-bench-ingest-'));
const rows: Row[] = [];
try {
  for (const batch of BATCHES) rows.push(await measure('embedded file', `file:${join(dir, `hop-${batch}.db`)}`, batch));
  if (findSqld()) {
    for (const batch of BATCHES) {
      const sqld = await startSqld({ dir: join(dir, `sqld-${batch}`) });
      try {
        rows.push(await measure('sqld (HTTP)', sqld.url, batch));
      } finally {
        await sqld.stop();
      }
    }
  } else {
    console.log('sqld not installed: skipping its rows');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`\nclick ingestion: ${fmt(EVENTS)} events over ${fmt(LINKS)} links, queue → committed rollups; raw client on the same database beside`);
console.log(
  `| database | batch | events/s | µs/event | raw client, same batch, events/s | raw client ceiling (${fmt(CEILING_ROWS)} rows a request), events/s | vs ceiling | target ≥ ${TARGET_EVENTS_PER_S.toLocaleString('en-US')}/s (embedded) |`,
);
console.log('|---|---:|---:|---:|---:|---:|---:|---|');
for (const r of rows) {
  const verdict = r.target === 'embedded file' ? (r.eventsPerS >= TARGET_EVENTS_PER_S ? 'met' : 'missed') : 'n/a';
  console.log(
    `| ${r.target} | ${fmt(r.batch)} | ${fmt(r.eventsPerS)} | ${r.usPerEvent.toFixed(1)} | ${fmt(r.baselinePerS)} | ${fmt(r.ceilingPerS)} | ` +
      `${((r.eventsPerS / r.ceilingPerS) * 100).toFixed(1)}% | ${verdict} |`,
  );
}
