/**
 * `npm run bench:metrics`: what the metrics cost a redirect. Two hop servers on Node, each on its own copy of a
 * libSQL file seeded with 10,000 links (clicks recorded, the link cache on: the production redirect), one with
 * metrics on (the default) and one with HOP_METRICS=off (no request, database or process metrics), loaded in turn
 * with the same Zipf mix of slugs by wrk (autocannon when wrk is missing), round after round, on, off, on, off...
 * so that both see the same machine. The server's CPU time per redirect (user + system from /proc, all threads) is
 * taken for each round; the report gives each side's median and their ratio, whose target is 1.03 at most.
 *
 * Environment: BENCH_ROUNDS (rounds per side, default 3), BENCH_DURATION (seconds per round, default 5),
 * BENCH_WARMUP (seconds per server before the first round, default 3), BENCH_GENERATOR (wrk | autocannon),
 * BENCH_PIN (0: no CPU pinning; else servers on CPU 1, the generator on CPU 0).
 * Exits non-zero only when the harness fails, never because the figure misses its target.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/cli/sqld.ts';
import { compose, composeApp } from '../src/composition/root.ts';
import { loadConfig } from '../src/config.ts';
import { createMetrics } from '../src/platform/metrics.ts';
import { openDatabase } from '../src/runtimes/database.ts';
import { zipfSample } from './mix.ts';
import { seedDatabase, slugOf } from './seed.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const LINK_COUNT = 10_000;
const CONNECTIONS = 50;
const TARGET_RATIO = 1.03;
const number = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`${name} must be a positive number, not "${raw}"`);
    process.exit(1);
  }
  return value;
};
const ROUNDS = Math.round(number('BENCH_ROUNDS', 3));
const DURATION_S = number('BENCH_DURATION', 5);
const WARMUP_S = number('BENCH_WARMUP', 3);
const CLOCK_TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
const pinning = process.env.BENCH_PIN !== '0' && cpus().length >= 2 && spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;
const pinned = (cpu: number, command: string, args: string[]) => (pinning ? { command: 'taskset', args: ['-c', String(cpu), command, ...args] } : { command, args });
const generator = process.env.BENCH_GENERATOR ?? (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status === 0 ? 'wrk' : 'autocannon');

interface LoadResult {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  non3xx: number;
  errors: { connect: number; read: number; write: number; timeout: number };
}

interface Server {
  name: string;
  metrics: 'on' | 'off';
  child: ChildProcess;
  url: string;
  rounds: Array<{ cpuUsPerRequest: number; rps: number; p99Ms: number }>;
}

const children = new Set<ChildProcess>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) done(out);
      else fail(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`})\n${out}`));
    });
  });
}

/** CPU time (user + system, all threads) of a process so far, in µs, from Linux's /proc. */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S) * 1e6;
}

async function load(url: string, seconds: number, pathsFile: string): Promise<LoadResult> {
  const host = `localhost:${new URL(url).port}`;
  const { command, args } =
    generator === 'wrk'
      ? pinned(0, 'wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', '-H', `Host: ${host}`, '-s', join(ROOT, 'bench/wrk-paths.lua'), url, '--', pathsFile])
      : pinned(0, process.execPath, [join(ROOT, 'bench/autocannon-worker.ts'), url, String(CONNECTIONS), String(seconds), pathsFile, host]);
  const out = await run(command, args, (seconds + 30) * 1000);
  const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`${generator} printed no result:\n${out}`);
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as LoadResult;
}

async function start(name: string, metrics: 'on' | 'off', dbFile: string): Promise<Server> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('HOP_')) env[k] = v;
  Object.assign(env, {
    PORT: String(port),
    HOST: '127.0.0.1',
    HOP_DATABASE_URL: `file:${dbFile}`,
    HOP_LOG_LEVEL: 'warn',
    HOP_RATE_LIMIT: 'off',
    HOP_SHUTDOWN_DELAY_MS: '0',
    HOP_METRICS: metrics,
  });
  const { command, args } = pinned(1, process.execPath, ['--max-semi-space-size=8', join(ROOT, 'src/runtimes/node.ts')]);
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  for (let i = 0; i < 200; i++) {
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) return { name, metrics, child, url, rounds: [] };
    await sleep(100);
  }
  throw new Error(`${name} did not become ready`);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * The same question without the network, the generator or the click pipeline: hop's app over the same seeded file,
 * cached redirects answered by app.fetch in one process, metrics on and off alternated in blocks, this process's CPU
 * per redirect. Steadier than the servers on a shared machine; it measures what the metrics add on the request path.
 */
async function inProcess(dir: string, draws: number[]) {
  const apps: Array<{ side: string; db: Awaited<ReturnType<typeof openDatabase>>; app: ReturnType<typeof composeApp>; cpu: number[] }> = [];
  for (const side of ['on', 'off'] as const) {
    const config = loadConfig({ HOP_DATABASE_URL: `file:${join(dir, `${side}.db`)}`, HOP_LOG_LEVEL: 'warn', HOP_RATE_LIMIT: 'off', HOP_METRICS: side });
    const db = await openDatabase(config);
    apps.push({ side, db, app: composeApp(compose(config, { db, metrics: createMetrics() })), cpu: [] });
  }
  const requests = draws.slice(0, 20_000).map((n) => new Request(`http://localhost/${slugOf(n)}`));
  const pass = async (app: ReturnType<typeof composeApp>) => {
    for (const r of requests) {
      const res = await app.fetch(r);
      if (res.status !== 302) throw new Error(`in process: ${res.status} for ${r.url}`);
    }
  };
  for (const a of apps) await pass(a.app); // warm-up: every link in the first tier, the code optimised
  for (let round = 0; round < 20; round++) {
    for (const a of round % 2 ? [...apps].reverse() : apps) {
      const before = process.cpuUsage();
      await pass(a.app);
      const used = process.cpuUsage(before);
      a.cpu.push((used.user + used.system) / requests.length);
    }
  }
  for (const a of apps) a.db.close();
  // The median, and the least (the round least disturbed by anything else on the machine).
  const [on, off] = [median(apps[0]!.cpu), median(apps[1]!.cpu)];
  const [onMin, offMin] = [Math.min(...apps[0]!.cpu), Math.min(...apps[1]!.cpu)];
  return { on, off, ratio: on / off, onMin, offMin, minRatio: onMin / offMin };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'hop-bench-metrics-'));
  try {
    // Each its own database, seeded alike (a copied file would leave its write-ahead log behind).
    for (const side of ['on', 'off']) await seedDatabase(`file:${join(dir, `${side}.db`)}`, LINK_COUNT);
    const pathsFile = join(dir, 'paths.txt');
    const { draws } = zipfSample(LINK_COUNT, 1.1, 100_000);
    writeFileSync(pathsFile, draws.map((n) => `/${slugOf(n)}\n`).join(''));
    const on = await start('hop (metrics on)', 'on', join(dir, 'on.db'));
    const off = await start('hop (HOP_METRICS=off)', 'off', join(dir, 'off.db'));
    const servers = [on, off];

    console.log(`bench:metrics  ${new Date().toISOString()}  commit ${spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim()}`);
    console.log(`  ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}, ${generator}, ${CONNECTIONS} connections`);
    console.log(`  ${ROUNDS} rounds of ${DURATION_S} s per side, alternated; cpu pinning ${pinning ? 'servers on CPU 1, generator on CPU 0' : 'off'}`);
    for (const s of servers) await load(s.url, WARMUP_S, pathsFile);
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so neither always follows the other.
      for (const s of round % 2 ? [off, on] : [on, off]) {
        const before = cpuUs(s.child.pid!);
        const result = await load(s.url, DURATION_S, pathsFile);
        const spent = cpuUs(s.child.pid!) - before;
        const failures = result.non3xx + Object.values(result.errors).reduce((a, b) => a + b, 0);
        if (failures) throw new Error(`${s.name}: ${failures} answers were not redirects`);
        s.rounds.push({ cpuUsPerRequest: spent / result.requests, rps: result.requests / (result.durationUs / 1e6), p99Ms: result.p99Us / 1000 });
      }
    }

    // The metrics are really on in one and off in the other.
    const text = await (await fetch(`${on.url}/metrics`)).text();
    if (!/^hop_http_requests_total\{method="GET",route="\/:slug",status_class="3xx"\} \d+/m.test(text)) throw new Error('metrics on: no request counted');
    if ((await (await fetch(`${off.url}/metrics`)).text()).includes('hop_http_requests_total')) throw new Error('HOP_METRICS=off still counts requests');

    const rows = [['target', 'req/s (median)', 'p99 ms (median)', 'server CPU µs/req (median)', 'per round']];
    for (const s of servers) {
      rows.push([
        s.name,
        median(s.rounds.map((r) => r.rps)).toFixed(0),
        median(s.rounds.map((r) => r.p99Ms)).toFixed(2),
        median(s.rounds.map((r) => r.cpuUsPerRequest)).toFixed(2),
        s.rounds.map((r) => r.cpuUsPerRequest.toFixed(2)).join(' '),
      ]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    console.log(`\n${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n')}\n`);
    const ratio = median(on.rounds.map((r) => r.cpuUsPerRequest)) / median(off.rounds.map((r) => r.cpuUsPerRequest));
    console.log(`  server CPU per redirect, metrics on / off = ${ratio.toFixed(3)} (target <= ${TARGET_RATIO}: ${ratio <= TARGET_RATIO ? 'met' : 'missed'})`);
    for (const s of servers) s.child.kill('SIGTERM');
    const local = await inProcess(dir, draws);
    console.log(
      `  in process (app.fetch, cached redirect, no clicks), CPU µs per redirect on / off: median ${local.on.toFixed(2)} / ${local.off.toFixed(2)} = ` +
        `${local.ratio.toFixed(3)}, least ${local.onMin.toFixed(2)} / ${local.offMin.toFixed(2)} = ${local.minRatio.toFixed(3)} (diagnostic)`,
    );
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await sleep(500);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main().catch((err: unknown) => {
  for (const c of children) c.kill('SIGKILL');
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
