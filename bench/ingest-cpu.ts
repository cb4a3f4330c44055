/**
 * Consumer alone: CPU per click of `clicks.ingest` (no queue, no classification), the figure the ingestion rows of
 * docs/benchmarks.md compare. Seeds 1,000 links, stores BENCH_INGEST_EVENTS (default 60000) clicks in batches of
 * BENCH_INGEST_BATCH (default 1000) spread over a day, checks the counts, and prints process CPU µs per click and
 * events/s. On the embedded file (the default) through the click thread's prepared-statement writer; with
 * BENCH_INGEST_DB=sqld on a local sqld through hop's remote client, printing sqld's CPU per click beside hop's, and
 * BENCH_INGEST_IN_FLIGHT batches (default 1) handed to the primary at once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSqld, type Sqld } from '../src/cli/sqld.ts';
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
const DATABASE = process.env.BENCH_INGEST_DB ?? 'file';
const IN_FLIGHT = Number(process.env.BENCH_INGEST_IN_FLIGHT ?? 1);
if (DATABASE !== 'file' && DATABASE !== 'sqld') throw new Error(`BENCH_INGEST_DB: file or sqld, not ${DATABASE}`);

/** User + system CPU of another process so far, in µs (/proc; clock ticks of 10 ms). */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}
const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'IN', 'BR', 'JP', 'CA', 'ES', 'IT', 'NL', 'SE', 'PL', 'MX', 'AU', null];
const REFERRERS = ['news.ycombinator.com', 'twitter.com', 't.co', 'www.google.com', 'www.reddit.com', null, null];
const DEVICES = ['mobile', 'desktop', 'desktop', 'mobile', 'desktop', 'tablet', 'bot', 'bot'];
const BROWSERS = ['Safari', 'Chrome', 'Safari', 'Chrome', 'Firefox', 'Safari', 'Slackbot', 'Googlebot'];
const OSES = ['iOS', 'Windows', 'macOS', 'Android', 'Linux', 'iOS', 'Other', 'Other'];

const dir = mkdtempSync(join(tmpdir(), 'hop-bench-ingest-cpu-'));
let sqld: Sqld | undefined;
try {
  sqld = DATABASE === 'sqld' ? await startSqld({ dir: join(dir, 'sqld') }) : undefined;
  const url = sqld ? sqld.url : `file:${join(dir, 'hop.db')}`;
  const { workspaceId } = await seedDatabase(url, LINKS);
  // A batch of a loaded primary may take longer than a request's deadline; measured here is the work, not the wait.
  const config = loadServerConfig({ HOP_DATABASE_URL: url, HOP_LOG_LEVEL: 'silent', HOP_DATABASE_TIMEOUT_MS: '30000' });
  const db = await openDatabase(config);
  const writer = sqld ? undefined : createEmbeddedWriter(embeddedPath(url), { busyTimeoutMs: config.databaseBusyTimeoutMs, syncEachCommit: false });
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
  const server0 = sqld ? cpuOf(sqld.child.pid!) : 0;
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < rows.length) {
        const i = next;
        next += BATCH;
        await repo.ingest(rows.slice(i, i + BATCH), []);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const server = sqld ? cpuOf(sqld.child.pid!) - server0 : 0;
  const rs = await db.client.execute('select (select count(*) from clicks) as raw, (select sum(humans) + sum(bots) from click_totals) as rolled');
  const { raw, rolled } = rs.rows[0] as unknown as { raw: number; rolled: number };
  if (Number(raw) !== EVENTS || Number(rolled) !== EVENTS) throw new Error(`stored ${raw}, rolled up ${rolled}, sent ${EVENTS}`);
  writer?.close();
  db.close();
  const us = (cpu.user + cpu.system) / EVENTS;
  console.log(
    `consumer alone (${DATABASE}): ${EVENTS} clicks, batches of ${BATCH}, ${IN_FLIGHT} in flight: ${us.toFixed(1)} µs CPU/click ` +
      `(user ${(cpu.user / EVENTS).toFixed(1)}, sys ${(cpu.system / EVENTS).toFixed(1)})` +
      (sqld ? `, sqld ${(server / EVENTS).toFixed(1)} µs CPU/click` : '') +
      `, ${Math.round(EVENTS / seconds)} events/s`,
  );
} finally {
  await sqld?.stop();
  rmSync(dir, { recursive: true, force: true });
}
