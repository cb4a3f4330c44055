/**
 * `npm run bench:shards`: hop over sharded sqld, the same load on 1 shard and on 4 (issue 18, item 7). Each target is a
 * control sqld plus its shards (`1`: one sqld shard, `4`: four; `4r`, on request: four, each with a sqld replica),
 * hop started as `hop serve` (bench/hop-process.ts) with the link cache off, so every redirect reads its shard
 * (the cache would answer them all from memory and hide the shards). Per target:
 * - seeds BENCH_SHARDS_LINKS links (2,000) through the API;
 * - redirects: the generator the other benches use (wrk, or autocannon in a child process; bench/wrk-paths.lua's
 *   result line) over the links in a seeded shuffled order, BENCH_SHARDS_CONNECTIONS (50) connections for
 *   BENCH_SHARDS_SECONDS (15) after a warm-up: req/s, p50, p99, errors, and hop's peak RSS;
 * - the workspace's link list (`GET /v1/links?limit=50`, a scatter over every shard and a merge), 4 clients in a
 *   closed loop for BENCH_SHARDS_LIST (400) requests: p50, p99, errors.
 * Then the ratios: 4-shard redirect p99 over 1-shard (target ≤ 1.10), and the list's.
 *
 * Exits non-zero when the harness fails or any request erred, never because a ratio is missed.
 * Environment: BENCH_SHARDS_TARGETS (`1,4`), BENCH_SHARDS_LINKS, BENCH_SHARDS_SECONDS, BENCH_SHARDS_CONNECTIONS,
 * BENCH_SHARDS_LIST, BENCH_GENERATOR (wrk | autocannon).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSqld, type Sqld } from '../src/cli/sqld.ts';
import { HarnessError, hopProcesses } from './hop-process.ts';
import { generatorCommand, parseResult, pickGenerator, type LoadResult } from './load-generator.ts';
import { prng } from './mix.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const ADMIN = 's'.repeat(40);
const TARGETS = (process.env.BENCH_SHARDS_TARGETS ?? '1,4').split(',').map((s) => s.trim());
const LINKS = Number(process.env.BENCH_SHARDS_LINKS ?? 2000);
const SECONDS = Number(process.env.BENCH_SHARDS_SECONDS ?? 15);
const WARMUP_S = 3;
const CONNECTIONS = Number(process.env.BENCH_SHARDS_CONNECTIONS ?? 50);
const LIST_REQUESTS = Number(process.env.BENCH_SHARDS_LIST ?? 400);
const LIST_CLIENTS = 4;
const SEED_CLIENTS = 4;
const TARGET_P99_RATIO = 1.1;

interface Outcome {
  redirect: LoadResult;
  list: { latencies: number[]; errors: number };
  peakMb: number;
}

const GENERATOR = pickGenerator((message) => new HarnessError(message));

/** One run of the generator over the paths file; its BENCH_RESULT line. */
function load(url: string, seconds: number, pathsFile: string): Promise<LoadResult> {
  const { command, args } = generatorCommand(ROOT, GENERATOR, url, CONNECTIONS, seconds, pathsFile);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', () => {
      const result = parseResult(out);
      if (!result) reject(new HarnessError(`${GENERATOR} printed no result:\n${out}`));
      else resolve(result);
    });
  });
}

async function seed(url: string): Promise<string> {
  const made = await fetch(`${url}/v1/workspaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'shards' }),
  });
  if (made.status !== 201) throw new HarnessError(`workspace: ${made.status} ${await made.text()}`);
  const key = ((await made.json()) as { apiKey: { key: string } }).apiKey.key;
  let next = 0;
  // A few creates at once: a primary takes one write at a time, and the seed is not what is measured.
  await Promise.all(
    Array.from({ length: SEED_CLIENTS }, async () => {
      for (let i = next++; i < LINKS; i = next++) {
        const res = await fetch(`${url}/v1/links`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ url: `https://example.com/shards/${i}`, slug: `sh-${i}` }),
        });
        if (res.status !== 201) throw new HarnessError(`seed link ${i}: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  return key;
}

async function listPages(url: string, key: string): Promise<Outcome['list']> {
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  await Promise.all(
    Array.from({ length: LIST_CLIENTS }, async () => {
      while (sent++ < LIST_REQUESTS) {
        const start = performance.now();
        try {
          const res = await fetch(`${url}/v1/links?limit=50`, { headers: { authorization: `Bearer ${key}` } });
          const body = (await res.json()) as { data?: unknown[] };
          if (res.status !== 200 || body.data?.length !== 50) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - start);
      }
    }),
  );
  return { latencies, errors };
}

async function benchTarget(target: string, pathsFile: string): Promise<Outcome> {
  const shards = Number(/^(\d+)r?$/.exec(target)?.[1]);
  if (!(shards >= 1)) throw new HarnessError(`unknown target ${target} (1, 4, 4r: a number of shards, r for a replica each)`);
  const dir = mkdtempSync(join(tmpdir(), `hop-bench-shards-${target}-`));
  const sqlds: Sqld[] = [];
  try {
    const control = await startSqld({ dir: join(dir, 'control') });
    sqlds.push(control);
    const entries: string[] = [];
    for (let i = 0; i < shards; i++) {
      const primary = await startSqld({ dir: join(dir, `shard-${i}`) });
      sqlds.push(primary);
      let entry = primary.url;
      if (target.endsWith('r')) {
        const replica = await startSqld({ dir: join(dir, `shard-${i}-replica`), primaryGrpcUrl: primary.grpcUrl });
        sqlds.push(replica);
        entry += `|${replica.url}`;
      }
      entries.push(entry);
    }
    const env = { HOP_DATABASE_SHARDS: entries.join(','), HOP_CACHE: 'off' };
    // `hop migrate` (inside startHop) reads the shards from the environment too.
    const { startHop, stopHop, peakMb } = hopProcesses(ROOT, ADMIN, env);
    const hop = await startHop(control.url);
    try {
      const key = await seed(hop.url);
      const check = await fetch(`${hop.url}/sh-0`, { headers: { host: `localhost:${new URL(hop.url).port}` }, redirect: 'manual' });
      await check.arrayBuffer();
      if (check.status !== 302) throw new HarnessError(`${target}: /sh-0 answered ${check.status}, expected 302`);
      await load(hop.url, WARMUP_S, pathsFile);
      const redirect = await load(hop.url, SECONDS, pathsFile);
      const list = await listPages(hop.url, key);
      return { redirect, list, peakMb: peakMb(hop.child.pid!) };
    } finally {
      await stopHop(hop.child);
    }
  } finally {
    await Promise.all(sqlds.reverse().map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const f = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

// Every link once per round, in a seeded shuffled order: each shard gets its share, no link is favoured.
const paths: string[] = [];
const random = prng(18);
for (let round = 0; round < 20; round++) {
  const order = Array.from({ length: LINKS }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  paths.push(...order.map((i) => `/sh-${i}`));
}
const work = mkdtempSync(join(tmpdir(), 'hop-bench-shards-paths-'));
const pathsFile = join(work, 'paths.txt');
writeFileSync(pathsFile, `${paths.join('\n')}\n`);

const loadBefore = loadavg()[0]!;
const results = new Map<string, Outcome>();
try {
  for (const target of TARGETS) {
    results.set(target, await benchTarget(target, pathsFile));
    console.error(`${target} shard(s): done`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(
  `\nbench:shards: ${LINKS} links, link cache off; redirects ${CONNECTIONS} connections for ${SECONDS} s (${GENERATOR}); ` +
    `list pages of 50, ${LIST_CLIENTS} clients, ${LIST_REQUESTS} requests (${new Date().toISOString()})`,
);
console.log('shards  redirect req/s  p50 ms  p99 ms  errors  |  list p50 ms  p99 ms  errors  |  peak RSS MB');
let erred = 0;
const p99 = new Map<string, { redirect: number; list: number }>();
for (const [target, o] of results) {
  const r = o.redirect;
  const errors = r.non3xx + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
  const list = [...o.list.latencies].sort((a, b) => a - b);
  erred += errors + o.list.errors;
  p99.set(target, { redirect: r.p99Us / 1000, list: quantile(list, 0.99) });
  console.log(
    `${target.padEnd(6)}  ${f(r.requests / (r.durationUs / 1e6), 0).padStart(14)}  ${f(r.p50Us / 1000, 2).padStart(6)}  ${f(r.p99Us / 1000, 2).padStart(6)}  ` +
      `${String(errors).padStart(6)}  |  ${f(quantile(list, 0.5), 2).padStart(11)}  ${f(quantile(list, 0.99), 2).padStart(6)}  ${String(o.list.errors).padStart(6)}  |  ` +
      `${f(o.peakMb, 0).padStart(11)}`,
  );
}
const one = p99.get('1');
for (const [target, p] of p99) {
  if (!one || target === '1') continue;
  console.log(
    `${target} shards / 1: redirect p99 ${f(p.redirect / one.redirect, 2)} (target ≤ ${TARGET_P99_RATIO}), list p99 ${f(p.list / one.list, 2)}`,
  );
}
console.log(
  `${cpus().length} cores running hop, every sqld and the generator; load average ${f(loadBefore, 2)} before, ` +
    `${f(loadavg()[0]!, 2)} after: compare ratios, not absolute figures.`,
);
if (erred > 0) {
  console.error(`\n${erred} requests erred`);
  process.exit(1);
}
