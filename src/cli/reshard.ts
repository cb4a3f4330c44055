/**
 * `hop reshard --to <url,url,...>`: moves buckets of links between shards while hop serves (src/platform/db/reshard.ts),
 * with a progress line and ETA on stderr; a rerun after an interruption continues the same move.
 */
import { InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from '../config.ts';
import type { Database } from '../platform/db/client.ts';
import { LAYOUT_STALE_MS } from '../platform/db/shards.ts';
import { reshard, type ReshardProgress, type ReshardReport } from '../platform/db/reshard.ts';
import { migrateDatabase, openDatabase } from '../runtimes/database.ts';
import { createClicksRepository, type ClickRow } from '../modules/clicks/clicks.repository.ts';

/** `--to`: the full new shard list, the same URLs HOP_DATABASE_SHARDS accepts. */
export function parseShardList(value: string): string[] {
  const urls = value.split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (!urls.length) throw new InvalidArgumentError('--to must list at least one shard URL');
  const bad = urls.find((u) => !/^(file:.+|libsql:\/\/.+|https?:\/\/.+)$/.test(u) || /^file::memory:|[?&]mode=memory/.test(u) || !URL.canParse(u));
  if (bad !== undefined) {
    throw new InvalidArgumentError(`"${bad}" is not a shard URL: each must start with file:, libsql://, http:// or https:// and name a file or server`);
  }
  if (new Set(urls).size !== urls.length) throw new InvalidArgumentError('--to names a shard twice');
  return urls;
}

export interface ReshardCommandOptions {
  to: string[];
  graceMs?: number;
  wave?: number;
  parallel?: number;
  json?: boolean;
}

const clock = (s: number | undefined) => (s === undefined ? '--:--' : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`);

function progressLine(p: ReshardProgress): string {
  const share = p.linksTotal ? Math.min(1, p.links / p.linksTotal) : p.buckets ? p.bucketsDone / p.buckets : 1;
  const width = 24;
  const bar = '#'.repeat(Math.round(share * width)).padEnd(width, '.');
  return `[${bar}] ${(share * 100).toFixed(0).padStart(3)}% ${p.step.padEnd(9)} buckets ${p.bucketsDone}/${p.buckets} links ${p.links}/${p.linksTotal} clicks ${p.clicks} ETA ${clock(p.etaS)}`;
}

export async function runReshard(opts: ReshardCommandOptions): Promise<ReshardReport> {
  const config = loadConfig(process.env);
  if (!config.databaseShards) {
    throw new ConfigError([
      { variable: 'HOP_DATABASE_SHARDS', message: 'hop reshard moves links between shards: set it to the current shard list (turning a single database into shards is not built)' },
    ]);
  }
  if (opts.to.includes(config.databaseUrl)) throw new InvalidArgumentError('--to must not name HOP_DATABASE_URL, the control database');
  // Longer than a process takes to see a freeze (its layout goes stale past LAYOUT_STALE_MS) plus a write begun before
  // it: its wait for a writer slot and its deadline, twice for a consumer batch that retries once.
  const graceMs = opts.graceMs ?? LAYOUT_STALE_MS + 2 * (config.databaseQueueTimeoutMs + config.databaseTimeoutMs);
  // Its own calls move thousands of rows each: they get a minute, not the servers' per-request deadline.
  const own = { ...config, databaseTimeoutMs: Math.max(config.databaseTimeoutMs, 60_000), databaseQueueTimeoutMs: 60_000 };
  const control = await openDatabase(own);
  const opened: Database[] = [];
  const tty = process.stderr.isTTY;
  let lastPrint = 0;
  let lastStep = '';
  try {
    await migrateDatabase(control);
    return await reshard({
      control,
      listed: config.databaseShards,
      to: opts.to,
      graceMs,
      waveBuckets: opts.wave,
      parallel: opts.parallel,
      async open(url) {
        const shard = await openDatabase({ ...own, databaseUrl: url, databaseSyncUrl: undefined });
        opened.push(shard);
        await migrateDatabase(shard);
        return shard;
      },
      // Parked clicks go through the clicks repository, as the consumer stores them: deduplicated by id, rollups and all.
      store: async (shard, rows) => void (await createClicksRepository(shard.orm).ingest(rows as ClickRow[], [])),
      progress(p) {
        const now = Date.now();
        if (tty) process.stderr.write(`\r${progressLine(p)}\u001b[K${p.step === 'done' ? '\n' : ''}`);
        else if (now - lastPrint >= 2000 || p.step !== lastStep) {
          process.stderr.write(`${progressLine(p)}\n`);
          lastPrint = now;
          lastStep = p.step;
        }
      },
      log: (message) => process.stderr.write(`${tty ? '\r\u001b[K' : ''}hop reshard: ${message}\n`),
    });
  } finally {
    for (const shard of opened) shard.close();
    control.close();
  }
}

export function describeReport(r: ReshardReport): string {
  const rate = (n: number) => (r.seconds > 0 ? Math.round(n / r.seconds) : n);
  return [
    `${r.resumed ? 'resumed and finished' : 'finished'}: ${r.bucketsMoved} buckets moved from ${r.source.length} to ${r.target.length} shards in ${r.seconds.toFixed(1)} s`,
    `copied ${r.links} links (${rate(r.links)}/s) and ${r.clicks} clicks (${rate(r.clicks)}/s); ${r.parked} clicks parked during freezes stored on their new shard`,
    ...(r.merged.length ? [`workspace and orphan rollups of ${r.merged.join(', ')} added to ${r.target[0]}`] : []),
    `verified: ${r.verified.buckets} buckets, ${r.verified.links} links on their shards as the directory says, ${r.verified.clicks} clicks in the rollups`,
    `set HOP_DATABASE_SHARDS=${r.target.join(',')} for every process started from now on`,
  ].join('\n');
}
