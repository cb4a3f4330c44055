/**
 * Consumer alone: CPU per click of `clicks.ingest` over the embedded prepared-statement writer (no queue, no
 * classification), the figure the ingestion rows of docs/benchmarks.md compare. Seeds 1,000 links, stores
 * BENCH_INGEST_EVENTS (default 60000) clicks in batches of BENCH_INGEST_BATCH (default 1000) spread over a day,
 * checks the counts, and prints process CPU µs per click and events/s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServerConfig } from '../src/config.ts';
import { type ClickRow, createClicksRepository } from '../src/modules/clicks/clicks.repository.ts';
import { newId } from '../src/platform/crypto.ts';
import { embeddedPath, openDatabase } from '../src/runtimes/database.ts';
import { createEmbeddedWriter } from '../src/runtimes/embedded-writer.ts';
import { zipfSample } from './mix.ts';
import { seedDatabase } from './seed.ts';

const EVENTS = Number(process.env.BENCH_INGEST_EVENTS ?? 60_000);
const BATCH = Number(process.env.BENCH_INGEST_BATCH ?? 1_000);
const LINKS = 1_000;
const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'IN', 'BR', 'JP', 'CA', 'ES', 'IT', 'NL', 'SE', 'PL', 'MX', 'AU', null];
const REFERRERS = ['news.ycombinator.com', 'twitter.com', 't.co', 'www.google.com', 'www.reddit.com', null, null];
const DEVICES = ['mobile', 'desktop', 'desktop', 'mobile', 'desktop', 'tablet', 'bot', 'bot'];
const BROWSERS = ['Safari', 'Chrome', 'Safari', 'Chrome', 'Firefox', 'Safari', 'Slackbot', 'Googlebot'];
const OSES = ['iOS', 'Windows', 'macOS', 'Android', 'Linux', 'iOS', 'Other', 'Other'];

const dir = mkdtempSync(join(tmpdir(), 'hop-bench-ingest-cpu-'));
try {
  const url = `file:${join(dir, 'hop.db')}`;
  const { workspaceId } = await seedDatabase(url, LINKS);
  const config = loadServerConfig({ HOP_DATABASE_URL: url, HOP_LOG_LEVEL: 'silent' });
  const db = await openDatabase(config);
  const writer = createEmbeddedWriter(embeddedPath(url), { busyTimeoutMs: config.databaseBusyTimeoutMs, syncEachCommit: false });
  const linkIds = (await db.client.execute('select id from links order by slug')).rows.map((r) => r[0] as string);
  const { draws } = zipfSample(LINKS, 1.1, EVENTS);
  const start = Date.now() - 86_400_000;
  const rows: ClickRow[] = draws.map((n, i) => {
    const agent = (i * 7) % DEVICES.length;
    return {
      id: newId('clk'),
      workspaceId,
      linkId: linkIds[n - 1]!,
      at: start + Math.floor((i / EVENTS) * 86_400_000),
      country: COUNTRIES[i % COUNTRIES.length]!,
      device: DEVICES[agent]!,
      browser: BROWSERS[agent]!,
      os: OSES[agent]!,
      referrer: REFERRERS[(i * 3) % REFERRERS.length]!,
      bot: agent >= 6,
    };
  });
  const repo = createClicksRepository(db.orm, writer);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += BATCH) await repo.ingest(rows.slice(i, i + BATCH), []);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const rs = await db.client.execute('select (select count(*) from clicks) as raw, (select sum(humans) + sum(bots) from click_totals) as rolled');
  const { raw, rolled } = rs.rows[0] as unknown as { raw: number; rolled: number };
  if (Number(raw) !== EVENTS || Number(rolled) !== EVENTS) throw new Error(`stored ${raw}, rolled up ${rolled}, sent ${EVENTS}`);
  writer.close();
  db.close();
  const us = (cpu.user + cpu.system) / EVENTS;
  console.log(`consumer alone: ${EVENTS} clicks, batches of ${BATCH}: ${us.toFixed(1)} µs CPU/click (user ${(cpu.user / EVENTS).toFixed(1)}, sys ${(cpu.system / EVENTS).toFixed(1)}), ${Math.round(EVENTS / seconds)} events/s`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
