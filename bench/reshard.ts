/**
 * `npm run bench:reshard`: online resharding at scale. Seeds BENCH_RESHARD_LINKS links (default 100,000) with
 * BENCH_RESHARD_CLICKS clicks each (default 5) on one shard, serves them with `hop serve`, and while redirects (and
 * so click recording) hammer it runs `hop reshard` from 1 to 3 shards (SIGKILLed at its first freeze, then rerun to
 * the end) and from 3 to 2. Prints links/s and clicks/s of each move, the projection for 1,000,000 links, failed
 * redirects and the click totals against the redirects answered.
 *
 * Environment: BENCH_RESHARD_STORAGE (`sqld`, default, one sqld per database; or `file`), BENCH_RESHARD_LINKS,
 * BENCH_RESHARD_CLICKS, BENCH_RESHARD_CONCURRENCY (redirect loops, default 4), BENCH_RESHARD_RATE (redirects per
 * second in all, default 200: steady traffic beside the move, not a saturation test; 0 for as fast as they go),
 * BENCH_RESHARD_PARALLEL (hop reshard's --parallel, default its own 4).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startSqld, type Sqld } from '../src/cli/sqld.ts';
import type { ReshardReport } from '../src/platform/db/reshard.ts';
import { startProcess } from '../test/support/process.ts';
import { ADMIN_TOKEN, clickTotals, hammer, ROOT, runHop, seedSharded, settle } from '../test/support/reshard.ts';

const STORAGE = process.env.BENCH_RESHARD_STORAGE ?? 'sqld';
const LINKS = Number(process.env.BENCH_RESHARD_LINKS ?? 100_000);
const CLICKS = Number(process.env.BENCH_RESHARD_CLICKS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_RESHARD_CONCURRENCY ?? 4);
const RATE = Number(process.env.BENCH_RESHARD_RATE ?? 200);
/** `hop reshard --parallel` (copy chunks in flight), when set. */
const PARALLEL = process.env.BENCH_RESHARD_PARALLEL ? ['--parallel', process.env.BENCH_RESHARD_PARALLEL] : [];
const TARGET_LINKS = 1_000_000;

const dir = mkdtempSync(join(tmpdir(), 'hop-bench-reshard-'));
const servers: Sqld[] = [];
async function database(name: string): Promise<string> {
  if (STORAGE === 'file') return `file:${join(dir, `${name}.db`)}`;
  if (STORAGE !== 'sqld') throw new Error(`BENCH_RESHARD_STORAGE must be sqld or file, not ${STORAGE}`);
  const sqld = await startSqld({ dir: join(dir, name) });
  servers.push(sqld);
  return sqld.url;
}

function parse(out: { code: number | null; output: string }, what: string): ReshardReport {
  if (out.code !== 0) throw new Error(`${what} failed (${out.code}):\n${out.output.slice(-3000)}`);
  const json = out.output.split('\n').find((line) => line.startsWith('{'));
  return JSON.parse(json!) as ReshardReport;
}

/**
 * The same move of a deployment of 1,000,000 links: the time that grows with the data (all but the graces) scaled by
 * 1,000,000 / BENCH_RESHARD_LINKS, plus the graces as they were (their number follows the waves, not the links).
 */
const projection = (r: ReshardReport) => (r.seconds - r.waitedS) * (TARGET_LINKS / LINKS) + r.waitedS;

let hop: Awaited<ReturnType<typeof startProcess>> | undefined;
try {
  const control = await database('control');
  const [a, b, c] = [await database('a'), await database('b'), await database('c')];
  const seedStart = Date.now();
  const seeded = await seedSharded(control, [a], LINKS, CLICKS);
  console.log(`seeded ${LINKS} links and ${seeded.clicks} clicks on one ${STORAGE} shard in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);

  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  // The grace hop reshard waits after a freeze or a flip follows from these (3 s + 2 × (queue + deadline) = 5 s).
  const env = { HOP_DATABASE_URL: control, HOP_DATABASE_SHARDS: a, HOP_DATABASE_TIMEOUT_MS: '750', HOP_DATABASE_QUEUE_TIMEOUT_MS: '250', HOP_LOG_LEVEL: 'error' };
  hop = await startProcess(
    process.execPath,
    [join(ROOT, 'src/runtimes/node.ts')],
    { ...env, PORT: String(port), HOST: '127.0.0.1', HOP_ADMIN_TOKEN: ADMIN_TOKEN, HOP_BASE_URL: `http://localhost:${port}`, HOP_RATE_LIMIT: 'off', HOP_SHUTDOWN_DELAY_MS: '0' },
    baseUrl,
    60_000,
  );
  const load = hammer(baseUrl, 'localhost', LINKS, CONCURRENCY, RATE || undefined);

  const grow = [a, b, c].join(',');
  const t0 = Date.now();
  const killed = await runHop(['reshard', '--to', grow, '--json', ...PARALLEL], env, /freezing/);
  console.log(`1 → 3: hop reshard SIGKILLed at its first freeze after ${((Date.now() - t0) / 1000).toFixed(1)} s (${killed.signal ?? `exit ${killed.code}`})`);
  const up = parse(await runHop(['reshard', '--to', grow, '--json', ...PARALLEL], env), 'the rerun of 1 → 3');
  const upWall = (Date.now() - t0) / 1000;
  const down = parse(await runHop(['reshard', '--to', [a, b].join(','), '--json', ...PARALLEL], { ...env, HOP_DATABASE_SHARDS: grow }), '3 → 2');
  const result = await load.stop();
  const expected = seeded.clicks + result.ok;
  const totals = await settle(() => clickTotals(control, [a, b]), { links: expected, workspaces: expected, raw: expected }, 30_000);

  const line = (name: string, r: ReshardReport, wall = r.seconds) =>
    `${name}: ${r.bucketsMoved} buckets, ${r.links} links (${Math.round(r.links / r.seconds)}/s) and ${r.clicks} clicks ` +
    `(${Math.round(r.clicks / r.seconds)}/s) in ${r.seconds.toFixed(1)} s (${wall.toFixed(1)} s with the killed run), ` +
    `${r.waitedS.toFixed(1)} s of it graces; ${r.parked} clicks parked; verified ${r.verified.links} links in ${r.verified.buckets} buckets` +
    `; projected for a deployment of 1,000,000 links: ${(projection(r) / 60).toFixed(1)} min`;
  console.log(line('1 → 3 (rerun)', up, upWall));
  console.log(line('3 → 2', down));
  console.log(`redirects: ${result.ok} answered 302, ${result.failed} failed ${JSON.stringify(result.statuses)}`);
  console.log(
    `clicks: ${seeded.clicks} seeded + ${result.ok} redirected = ${expected}; counted per link ${totals.links}, per workspace ${totals.workspaces}, raw rows ${totals.raw}` +
      (totals.links === expected && totals.workspaces === expected && totals.raw === expected ? ' (exact)' : ' (DIFFERENT)'),
  );
  if (result.failed || totals.links !== expected || totals.workspaces !== expected || totals.raw !== expected) process.exitCode = 1;
} finally {
  await hop?.stop();
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
}
