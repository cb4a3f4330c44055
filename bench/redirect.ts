/**
 * `npm run bench`: the redirect benchmark. Seeds a temporary libSQL file with 10,000 links, starts hop
 * (`node src/runtimes/node.ts`), a bare node:http 302 server (bench/bare.ts) and a minimal Hono 302 app
 * (bench/hono-302.ts, a diagnostic row) as child processes, checks that they answer real redirects, then drives
 * each in turn with the same load generator (wrk, or autocannon in a child process when wrk is missing) over
 * a Zipf-distributed list of slugs, and prints req/s, p50, p99, errors and the hop/bare ratio with pass/fail.
 *
 * Environment: BENCH_DURATION (measured seconds per target, default 10), BENCH_WARMUP (default 3),
 * BENCH_GENERATOR (wrk | autocannon, default: wrk when installed), BENCH_PIN (0 turns off CPU pinning),
 * BENCH_CPU_PROF (a directory: run hop under `node --cpu-prof` and keep the profile there; summarise it with
 * bench/cpu-profile.ts).
 * Exits non-zero only when the harness fails (a child does not start, hop answers something other than the
 * seeded redirects, the generator fails or sees errors), never because hop misses a target.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipfSample } from './mix.ts';
import { seedDatabase, slugOf, targetOf } from './seed.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const LINK_COUNT = 10_000;
const ZIPF_S = 1.1;
const PATH_SAMPLES = 100_000;
const CONNECTIONS = 50;
const DURATION_S = positiveNumber('BENCH_DURATION', 10);
const WARMUP_S = positiveNumber('BENCH_WARMUP', 3);
const HOP_LOG = { HOP_LOG_LEVEL: 'info', HOP_LOG_SAMPLE_RATE: '0.01' };
const TARGET_RATIO = 0.5;
const TARGET_P99_MS = 10;
const READY_TIMEOUT_MS = 20_000;

interface Target {
  name: string;
  script: string;
  env: Record<string, string>;
  nodeArgs: string[];
  /** Polled until it answers `ready.status`. */
  ready: { path: string; status: number };
  child?: ChildProcess;
  url?: string;
  stdoutLines: number;
  output: string[];
}

interface LoadResult {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  non3xx: number;
  errors: { connect: number; read: number; write: number; timeout: number };
}

class HarnessError extends Error {}

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (Number.isFinite(value) && value > 0) return value;
  console.error(`${name} must be a positive number of seconds, not "${raw}"`);
  process.exit(1);
}

// --- child processes --------------------------------------------------------------------------------------

const children = new Set<ChildProcess>();
let tempDir: string | undefined;

/**
 * With taskset and two or more CPUs, servers run on CPU 1 and the generator on CPU 0. Unpinned, the scheduler
 * sometimes puts both on one core and the same target measured 37k or 72k req/s from one run to the next.
 */
const pinning =
  process.env.BENCH_PIN !== '0' &&
  cpus().length >= 2 &&
  spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;
const pinned = (cpu: number, command: string, args: string[]) =>
  pinning ? { command: 'taskset', args: ['-c', String(cpu), command, ...args] } : { command, args };

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}

function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  // A developer's own HOP_* settings must not leak into the measured configuration.
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('HOP_')) env[key] = value;
  return { ...env, ...extra };
}

async function startTarget(target: Target): Promise<void> {
  const port = await freePort();
  target.url = `http://127.0.0.1:${port}`;
  // taskset execs its command, so the PID stays the server's own PID.
  const { command, args } = pinned(1, process.execPath, [...target.nodeArgs, target.script]);
  const child = spawn(command, args, {
    cwd: ROOT,
    env: cleanEnv({ ...target.env, PORT: String(port), HOST: '127.0.0.1' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  target.child = child;
  children.add(child);
  child.once('exit', () => children.delete(child));
  // Drained continuously so that hop's (sampled) request log never blocks on a full pipe; the tail is kept
  // for error messages.
  const keep = (chunk: Buffer, counts: boolean) => {
    const lines = chunk.toString('utf8').split('\n').filter(Boolean);
    if (counts) target.stdoutLines += lines.length;
    target.output.push(...lines);
    if (target.output.length > 40) target.output.splice(0, target.output.length - 40);
  };
  child.stdout!.on('data', (c: Buffer) => keep(c, true));
  child.stderr!.on('data', (c: Buffer) => keep(c, false));

  const deadline = Date.now() + READY_TIMEOUT_MS;
  const { path: probePath, status: wanted } = target.ready;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const res = await fetch(target.url + probePath, { redirect: 'manual', signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === wanted) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new HarnessError(
    `${target.name} did not become ready (GET ${probePath} -> ${wanted}) within ${READY_TIMEOUT_MS} ms` +
      `\n--- last output of ${target.name} ---\n${target.output.join('\n')}`,
  );
}

/** SIGTERM by PID, then SIGKILL if the child has not exited after a few seconds. */
async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, 'SIGTERM');
  const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), graceMs).unref());
  if ((await Promise.race([exited, timer])) === 'late') {
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }
}

/** Runs a command to completion with a time limit, returning its stdout. */
function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      children.delete(child);
      fail(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) done(out);
      else fail(new HarnessError(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`})\n${err}${out}`));
    });
  });
}

// --- checks and load --------------------------------------------------------------------------------------

/** hop must answer the seeded redirects, and 404 for a slug that does not exist; otherwise the run is void. */
async function verifyHop(url: string, draws: number[]): Promise<number> {
  const sample = [...new Set(draws.slice(0, 2000))].slice(0, 150);
  for (let n = 1; n <= LINK_COUNT; n += 197) sample.push(n);
  for (const n of sample) {
    const res = await fetch(`${url}/${slugOf(n)}`, { redirect: 'manual' });
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (res.status !== 302 || location !== targetOf(n)) {
      throw new HarnessError(`hop answered GET /${slugOf(n)} with ${res.status} ${location ?? ''}, expected 302 ${targetOf(n)}`);
    }
  }
  const missing = await fetch(`${url}/no-such-link`, { redirect: 'manual' });
  await missing.arrayBuffer();
  if (missing.status !== 404) throw new HarnessError(`hop answered GET /no-such-link with ${missing.status}, expected 404`);
  return sample.length + 1;
}

async function verifyFixed(target: Target): Promise<void> {
  const res = await fetch(`${target.url}/${slugOf(1)}`, { redirect: 'manual' });
  await res.arrayBuffer();
  if (res.status !== 302 || res.headers.get('location') !== 'https://example.com/') {
    throw new HarnessError(`${target.name} answered ${res.status}, expected a 302 to https://example.com/`);
  }
}

function generatorCommand(generator: 'wrk' | 'autocannon', url: string, seconds: number, pathsFile: string) {
  // Clicks arrive for the default domain (localhost), as they do in production for its configured host; the
  // connection still goes to 127.0.0.1, where the servers listen.
  const host = `localhost:${new URL(url).port}`;
  if (generator === 'wrk') {
    // One wrk thread: the machine has two cores, one for the server under test and one for the generator.
    const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', '-H', `Host: ${host}`];
    return pinned(0, 'wrk', [...args, '-s', join(ROOT, 'bench/wrk-paths.lua'), url, '--', pathsFile]);
  }
  const worker = join(ROOT, 'bench/autocannon-worker.ts');
  return pinned(0, process.execPath, [worker, url, String(CONNECTIONS), String(seconds), pathsFile, host]);
}

async function load(generator: 'wrk' | 'autocannon', url: string, seconds: number, pathsFile: string) {
  const { command, args } = generatorCommand(generator, url, seconds, pathsFile);
  const out = await run(command, args, (seconds + 30) * 1000);
  const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new HarnessError(`${generator} printed no result:\n${out}`);
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as LoadResult;
}

// --- report -----------------------------------------------------------------------------------------------

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r, ri) => {
      const line = r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
      return ri === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

function pickGenerator(): 'wrk' | 'autocannon' {
  const forced = process.env.BENCH_GENERATOR;
  if (forced === 'wrk' || forced === 'autocannon') return forced;
  if (forced) throw new HarnessError('BENCH_GENERATOR must be wrk or autocannon');
  if (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status === 0) return 'wrk';
  console.log('wrk is not installed (`apt-get install -y wrk` gives it); falling back to autocannon in a child process.');
  return 'autocannon';
}

function generatorVersion(generator: 'wrk' | 'autocannon'): string {
  if (generator === 'autocannon') return `autocannon (node ${process.version}, child process)`;
  // `wrk -v` prints its version line and exits 1.
  const out = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  return (out.stdout || out.stderr).split('\n')[0]!.replace(/ Copyright.*/, '').trim();
}

// --- main -------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const generator = pickGenerator();
  const dir = mkdtempSync(join(tmpdir(), 'hop-bench-'));
  tempDir = dir;
  const profileDir = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;
  const dbUrl = `file:${join(dir, 'hop.db')}`;
  const fixed302 = (name: string, script: string): Target => ({
    name,
    script,
    env: {},
    nodeArgs: [],
    ready: { path: '/ready-probe', status: 302 },
    stdoutLines: 0,
    output: [],
  });
  const bare = fixed302('bare', 'bench/bare.ts');
  const hop: Target = {
    name: 'hop',
    script: 'src/runtimes/node.ts',
    env: { HOP_DATABASE_URL: dbUrl, ...HOP_LOG },
    nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
    ready: { path: '/readyz', status: 200 },
    stdoutLines: 0,
    output: [],
  };
  const hono = fixed302('hono-302 (diag)', 'bench/hono-302.ts');
  const honoDb: Target = {
    ...fixed302('hono+libsql read (diag)', 'bench/hono-libsql.ts'),
    env: { HOP_DATABASE_URL: dbUrl },
    ready: { path: `/${slugOf(1)}`, status: 302 },
  };
  const targets = [bare, hop, hono, honoDb];
  const budgetMs = (targets.length * (WARMUP_S + DURATION_S + 40) + 120) * 1000;
  const watchdog = setTimeout(() => {
    console.error(`harness deadline of ${Math.round(budgetMs / 1000)} s passed; stopping`);
    void cleanup(dir).then(() => process.exit(1));
  }, budgetMs);
  watchdog.unref();

  try {
    const cpu = cpus();
    console.log('hop redirect benchmark');
    console.log(`  date        ${new Date().toISOString()}`);
    console.log(`  node        ${process.version} (${process.platform}-${process.arch})`);
    console.log(`  cpus        ${cpu.length} x ${cpu[0]?.model ?? 'unknown'}, ${Math.round(totalmem() / 2 ** 30)} GiB`);
    console.log(`  generator   ${generatorVersion(generator)}, ${CONNECTIONS} connections`);
    console.log(`  cpu pinning ${pinning ? 'servers on CPU 1, generator on CPU 0 (taskset)' : 'off'}`);
    console.log(`  timing      ${WARMUP_S} s warm-up (not measured) + ${DURATION_S} s measured, per target, one after another`);
    console.log(`  hop log     HOP_LOG_LEVEL=${HOP_LOG.HOP_LOG_LEVEL} HOP_LOG_SAMPLE_RATE=${HOP_LOG.HOP_LOG_SAMPLE_RATE}`);

    const seedStart = performance.now();
    await seedDatabase(dbUrl, LINK_COUNT);
    const mix = zipfSample(LINK_COUNT, ZIPF_S, PATH_SAMPLES);
    const pathsFile = join(dir, 'paths.txt');
    writeFileSync(pathsFile, mix.draws.map((n) => `/${slugOf(n)}\n`).join(''));
    console.log(`  database    ${LINK_COUNT} links seeded in ${Math.round(performance.now() - seedStart)} ms (libSQL file, WAL)`);
    console.log(
      `  mix         GET /{slug}, Zipf s=${ZIPF_S} over ${LINK_COUNT} slugs: ${PATH_SAMPLES} draws, ${mix.distinct} distinct, ` +
        `top slug ${(mix.top1 * 100).toFixed(1)}%, top 100 ${(mix.top100 * 100).toFixed(1)}%`,
    );

    for (const target of targets) await startTarget(target);
    const checked = await verifyHop(hop.url!, mix.draws);
    await verifyFixed(bare);
    await verifyFixed(hono);
    await verifyHop(honoDb.url!, mix.draws);
    console.log(`  checked     ${checked} hop answers (302 + the seeded Location, 404 for an unknown slug) before loading\n`);

    const results = new Map<Target, LoadResult>();
    for (const target of targets) {
      process.stdout.write(`  ${target.name}: warm-up ${WARMUP_S} s, measuring ${DURATION_S} s ... `);
      await load(generator, target.url!, WARMUP_S, pathsFile);
      const logBefore = target.stdoutLines;
      const result = await load(generator, target.url!, DURATION_S, pathsFile);
      results.set(target, result);
      const rps = result.requests / (result.durationUs / 1e6);
      const logNote = target === hop ? `, ${target.stdoutLines - logBefore} log lines` : '';
      console.log(`${Math.round(rps)} req/s${logNote}`);
    }

    const rpsOf = (r: LoadResult) => r.requests / (r.durationUs / 1e6);
    const bareResult = results.get(bare)!;
    const hopResult = results.get(hop)!;
    const rows = [['target', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors/non-3xx', 'req/s vs bare']];
    let invalid = 0;
    for (const [{ name }, r] of results) {
      const socketErrors = r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
      invalid += socketErrors + r.non3xx;
      rows.push([
        name,
        Math.round(rpsOf(r)).toLocaleString('en-US'),
        (r.p50Us / 1000).toFixed(2),
        (r.p99Us / 1000).toFixed(2),
        (r.maxUs / 1000).toFixed(1),
        `${socketErrors}/${r.non3xx}`,
        `${((rpsOf(r) / rpsOf(bareResult)) * 100).toFixed(1)}%`,
      ]);
    }
    console.log(`\n${table(rows)}\n`);

    const ratio = rpsOf(hopResult) / rpsOf(bareResult);
    const p99 = hopResult.p99Us / 1000;
    const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
    console.log(`  hop/bare req/s = ${ratio.toFixed(3)}  target >= ${TARGET_RATIO}  ${verdict(ratio >= TARGET_RATIO)}`);
    console.log(`  hop p99        = ${p99.toFixed(2)} ms  target < ${TARGET_P99_MS} ms at ${CONNECTIONS} connections  ${verdict(p99 < TARGET_P99_MS)}`);
    if (profileDir) console.log(`  hop CPU profile written to ${profileDir} (summarise: node bench/cpu-profile.ts <file>)`);
    if (invalid > 0) {
      // A run with failed or non-redirect answers measures something else than the redirect path.
      console.error(`\nINVALID RUN: ${invalid} socket errors or non-3xx answers during measurement`);
      return 1;
    }
    return 0;
  } finally {
    clearTimeout(watchdog);
    await cleanup(dir);
  }
}

async function cleanup(dir: string): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
  rmSync(dir, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    process.exit(130);
  });
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`\nbenchmark harness failed: ${err instanceof HarnessError ? err.message : (err as Error).stack}`);
  process.exitCode = 1;
}
