/**
 * `npm run bench` (saturation row): hop as `npm start` and `npm run start:bun` run it (their commands from
 * package.json, flags included, without npm in front), on the embedded file with the in-process click queue, under
 * wrk at 50 connections over 300 seeded links for BENCH_SATURATION_S seconds (default 60). Then it waits for the
 * queue to drain, stops hop and counts the stored clicks. Per runtime: redirects served (wrk's 3xx), refused (503,
 * the queue full), clicks stored, dropped (taken by hop and not stored), idle RSS, the most RSS seen under load and
 * the peak over the process's whole life (the kernel's VmRSS and VmHWM, every thread included), the backlog's
 * high-water mark (`hop_click_queue_buffered_max`) and the largest batch, with the targets beside them.
 *
 * Exits non-zero when the harness fails or the counts do not add up (a click served and not stored, or more
 * stored than hop took), never because a memory target is missed.
 * BENCH_SATURATION_DB=sqld runs the same load with hop on a local sqld primary (`HOP_DATABASE_URL=http://...`, as
 * `npm run dev` starts it) instead of the embedded file: the click thread then stores the clicks over HTTP; sqld
 * runs on the generator's CPU, and its own peak RSS is printed apart.
 *
 * Environment: BENCH_SATURATION_S (default 60), BENCH_SATURATION_TARGETS (`node,bun`), BENCH_SATURATION_DB (`file`,
 * `sqld` or both, comma-separated; default `file`), BENCH_PIN (0: no taskset).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@libsql/client';
import Database from 'libsql';
import { findSqld, freePort, SQLD_INSTALL_HINT, startSqld, type Sqld } from '../src/cli/sqld.ts';
import { zipfSample } from './mix.ts';
import { seedDatabase, slugOf } from './seed.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const LINKS = 300;
const CONNECTIONS = 50;
const SECONDS = Number(process.env.BENCH_SATURATION_S ?? 60);
const RUNTIMES = (process.env.BENCH_SATURATION_TARGETS ?? 'node,bun').split(',').map((s) => s.trim());
const DATABASES = (process.env.BENCH_SATURATION_DB ?? 'file').split(',').map((s) => s.trim());
for (const d of DATABASES) if (d !== 'file' && d !== 'sqld') throw new Error(`BENCH_SATURATION_DB: unknown database ${d} (file or sqld)`);
// Goals of issue 14, stated for Node; Bun's figures are printed against the same numbers.
const TARGET_IDLE_MB = 120;
const TARGET_PEAK_MB = 250;
const DRAIN_TIMEOUT_MS = 120_000;

const pinning =
  process.env.BENCH_PIN !== '0' && cpus().length >= 2 && spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;
const pinned = (cpu: number, command: string, args: string[]) =>
  pinning ? { command: 'taskset', args: ['-c', String(cpu), command, ...args] } : { command, args };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class HarnessError extends Error {}

// hop and wrk, stopped if the harness is interrupted.
const children = new Set<ChildProcess>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}
const track = (child: ChildProcess) => {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
};

interface Row {
  runtime: string;
  database: string;
  /** sqld's own peak RSS (the sqld rows), MB. */
  sqldPeakMb?: number | undefined;
  served: number;
  refused: number;
  taken: number;
  stored: number;
  idleMb: number;
  /** The most RSS seen under load (sampled every 100 ms) and the kernel's high-water mark over the process's life. */
  loadMb: number;
  peakMb: number;
  highWater: number;
  largestBatch: number;
  drainS: number;
}

/** VmRSS and VmHWM (peak) of a process, in MB, from /proc. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

async function metrics(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  const events = (result: string) => value(new RegExp(`hop_click_queue_events_total\\{queue="memory",result="${result}"\\} (\\d+)`));
  return {
    buffered: value(/hop_click_queue_buffered\{queue="memory"\} (\d+)/),
    highWater: value(/hop_click_queue_buffered_max\{queue="memory"\} (\d+)/),
    largestBatch: value(/hop_click_queue_batch_max\{queue="memory"\} (\d+)/),
    delivered: events('delivered'),
    rejected: events('rejected'),
    refused: events('refused'),
  };
}

function wrk(url: string, seconds: number, pathsFile: string): Promise<{ requests: number; non3xx: number; errors: Record<string, number> }> {
  const { command, args } = pinned(0, 'wrk', [
    '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '10s', '-s', join(ROOT, 'bench/wrk-paths.lua'), url, '--', pathsFile,
  ]);
  return new Promise((done, fail) => {
    const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.once('error', fail);
    child.once('exit', (code) => {
      const line = /BENCH_RESULT (\{.*\})/.exec(out)?.[1];
      if (code !== 0 || !line) return fail(new HarnessError(`wrk failed (exit ${code}):\n${out}`));
      done(JSON.parse(line) as { requests: number; non3xx: number; errors: Record<string, number> });
    });
  });
}

async function startHop(runtime: string, dbUrl: string, port: number): Promise<ChildProcess> {
  // The command of `npm start` (or `npm run start:bun`) itself, flags included, without npm and sh in front.
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const [program, ...args] = scripts[runtime === 'node' ? 'start' : 'start:bun']!.replace(/^exec /, '').split(/\s+/);
  const launch = pinned(1, program === 'node' ? process.execPath : join(ROOT, 'node_modules/.bin', program!), args);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('HOP_')) env[k] = v;
  const child = track(spawn(launch.command, launch.args, {
    cwd: ROOT,
    env: {
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      HOP_DATABASE_URL: dbUrl,
      HOP_SHUTDOWN_DELAY_MS: '0',
      // Every request comes from one address: the per-address limit is lifted (the check still runs).
      HOP_RATE_LIMIT_REDIRECT: '1000000000/60s',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  const output: string[] = [];
  const keep = (c: Buffer) => {
    output.push(...c.toString('utf8').split('\n').filter(Boolean));
    if (output.length > 40) output.splice(0, output.length - 40);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return child;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new HarnessError(`hop on ${runtime} did not start:\n${output.join('\n')}`);
}

async function stop(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  if ((await Promise.race([exited, sleep(15_000).then(() => 'late')])) === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
}

/** The database of one row: the embedded file, or a fresh sqld primary (pinned with the generator). */
async function openTarget(database: string, runtime: string, dir: string) {
  if (database === 'file') {
    const dbFile = join(dir, `${runtime}.db`);
    return {
      url: `file:${dbFile}`,
      sqld: undefined as Sqld | undefined,
      async stored() {
        const db = new Database(dbFile, { readonly: true });
        try {
          return Number((db.prepare('select count(*) as n from clicks').get() as { n: number }).n);
        } finally {
          db.close();
        }
      },
    };
  }
  const sqld = await startSqld({ dir: join(dir, `${runtime}-sqld`) });
  if (pinning) spawnSync('taskset', ['-a', '-p', '-c', '0', String(sqld.child.pid)], { stdio: 'ignore' });
  return {
    url: sqld.url,
    sqld,
    async stored() {
      const client = createClient({ url: sqld.url });
      try {
        return Number((await client.execute('select count(*) as n from clicks')).rows[0]!.n);
      } finally {
        client.close();
      }
    },
  };
}

async function measure(runtime: string, database: string, dir: string, pathsFile: string): Promise<Row> {
  const target = await openTarget(database, runtime, dir);
  try {
    return await measureOn(runtime, database, target, pathsFile);
  } finally {
    await target.sqld?.stop();
  }
}

async function measureOn(
  runtime: string,
  database: string,
  target: Awaited<ReturnType<typeof openTarget>>,
  pathsFile: string,
): Promise<Row> {
  const dbUrl = target.url;
  await seedDatabase(dbUrl, LINKS);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Node keeps each version's stripped TypeScript in its compile cache (bin/hop.js): a first start after a change
  // loads the stripper too (~17 MB in each thread). Measured is every later start, after one to fill the cache.
  if (runtime === 'node') {
    const warm = await startHop(runtime, dbUrl, port);
    // An unknown slug: its orphan visit starts the click thread (its modules cached too) and is no click.
    await (await fetch(`${url}/warm-up`, { redirect: 'manual' })).arrayBuffer();
    await stop(warm);
  }
  const hop = await startHop(runtime, dbUrl, port);
  const pid = hop.pid!;
  try {
    // Idle: started, one redirect answered (its lazy paths loaded), then left alone as an operator's server would be.
    await (await fetch(`${url}/${slugOf(1)}`, { redirect: 'manual' })).arrayBuffer();
    await sleep(5000);
    const idleMb = memory(pid).rss;
    let loadMb = 0;
    const sampler = setInterval(() => (loadMb = Math.max(loadMb, memory(pid).rss)), 100);
    const result = await wrk(url, SECONDS, pathsFile).finally(() => clearInterval(sampler));
    if (Object.values(result.errors).some((n) => n > 0)) throw new HarnessError(`wrk saw errors: ${JSON.stringify(result.errors)}`);
    const drainStart = Date.now();
    let m = await metrics(url);
    while (m.buffered > 0) {
      if (Date.now() - drainStart > DRAIN_TIMEOUT_MS) throw new HarnessError(`queue did not drain: ${JSON.stringify(m)}`);
      await sleep(200);
      m = await metrics(url);
    }
    const drainS = (Date.now() - drainStart) / 1000;
    const peakMb = memory(pid).peak;
    await stop(hop);
    const stored = await target.stored();
    const sqldPeakMb = target.sqld ? memory(target.sqld.child.pid!).peak : undefined;
    // The one redirect of the idle measurement is a click too.
    const served = result.requests - result.non3xx + 1;
    return {
      runtime,
      database,
      sqldPeakMb,
      served,
      refused: result.non3xx,
      taken: m.delivered + m.rejected,
      stored,
      idleMb,
      loadMb,
      peakMb,
      highWater: m.highWater,
      largestBatch: m.largestBatch,
      drainS,
    };
  } finally {
    await stop(hop);
  }
}

if (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status !== 0) {
  console.log('saturation: wrk is not installed (apt-get install -y wrk); skipping');
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'hop-bench-saturation-'));
const rows: Row[] = [];
let failed = false;
try {
  const { draws } = zipfSample(LINKS, 1.1, 100_000);
  const pathsFile = join(dir, 'paths.txt');
  writeFileSync(pathsFile, draws.map((n) => `/${slugOf(n)}`).join('\n') + '\n');
  for (const database of DATABASES) {
    if (database === 'sqld' && !findSqld()) {
      console.log(`saturation: sqld is not installed (${SQLD_INSTALL_HINT}); skipping its rows`);
      continue;
    }
    for (const runtime of RUNTIMES) {
      console.log(`saturation: hop on ${runtime} (${database}), ${SECONDS} s of wrk at ${CONNECTIONS} connections over ${LINKS} links...`);
      rows.push(await measure(runtime, database, dir, pathsFile));
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mb = (n: number) => `${n.toFixed(0)} MB`;
console.log(`\nsaturation: ${SECONDS} s, ${CONNECTIONS} connections, ${LINKS} links (Zipf), in-process queue`);
console.log(
  '| runtime | database | served (3xx) | refused (503) | clicks stored | dropped | idle RSS (target ≤ 120 MB) | most RSS under load | peak RSS, whole life (target ≤ 250 MB) | backlog high-water | largest batch | drained in | sqld peak RSS |',
);
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  // wrk stops with up to one request per connection answered by hop after wrk stopped counting: stored may exceed
  // served by that much, never fall below it.
  const dropped = r.taken - r.stored;
  if (r.stored < r.served || r.stored > r.served + CONNECTIONS || dropped !== 0) failed = true;
  const verdict = (v: number, t: number) => `${mb(v)} ${v <= t ? 'met' : 'missed'}`;
  console.log(
    `| ${r.runtime} | ${r.database} | ${fmt(r.served)} | ${fmt(r.refused)} | ${fmt(r.stored)} | ${fmt(dropped)} (target 0) | ${verdict(r.idleMb, TARGET_IDLE_MB)} | ` +
      `${mb(r.loadMb)} | ${verdict(r.peakMb, TARGET_PEAK_MB)} | ${fmt(r.highWater)} | ${fmt(r.largestBatch)} | ${r.drainS.toFixed(1)} s | ${r.sqldPeakMb === undefined ? '-' : mb(r.sqldPeakMb)} |`,
  );
}
if (failed) {
  console.error('saturation: the counts do not add up (stored must equal what hop took, and lie between served and served + connections)');
  process.exit(1);
}
