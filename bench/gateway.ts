/**
 * `npm run bench:gateway`: what the gateway (Caddy with deploy/gateway/Caddyfile) costs per redirect. One hop redirect
 * process (`hop serve --role redirect`, Node, an embedded file seeded with 1,000 links, clicks and rate limits off so
 * that only HTTP is compared) is measured directly over HTTP, then through Caddy over HTTPS (TLS, routing, the
 * reverse proxy with its health checks), with the same wrk method as bench/redirect.ts: one wrk thread, 50
 * keep-alive connections, a Zipf mix of slugs, the server side (hop, Caddy, the bare baseline) pinned to CPU 1 and
 * wrk to CPU 0. A bare node:http 302 server (bench/bare.ts) runs in the same run to show where the generator's
 * ceiling is. CPU time per request is read from /proc for hop and for Caddy apart.
 *
 * Environment: BENCH_DURATION (measured seconds per target, default 10), BENCH_WARMUP (default 3), BENCH_PIN (0
 * turns off pinning). Needs wrk and caddy; exits non-zero only when the harness fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/cli/sqld.ts';
import { CADDY_INSTALL_HINT, findCaddy } from '../src/cli/stack.ts';
import { zipfSample } from './mix.ts';
import { seedDatabase, slugOf } from './seed.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const LINKS = 1000;
const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? 3);
const CLOCK_TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
const pinning = process.env.BENCH_PIN !== '0' && cpus().length >= 2 && spawnSync('sh', ['-c', 'command -v taskset']).status === 0;
const pinned = (cpu: number, command: string, args: string[]) =>
  pinning ? { command: 'taskset', args: ['-c', String(cpu), command, ...args] } : { command, args };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LoadResult {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  non3xx: number;
  errors: { connect: number; read: number; write: number; timeout: number };
}

const children = new Set<ChildProcess>();
process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));

function start(command: string, args: string[], env: Record<string, string | undefined>) {
  const launch = pinned(1, command, args);
  const child = spawn(launch.command, launch.args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d: Uint8Array) => (out = (out + new TextDecoder().decode(d)).slice(-4000)));
  child.stderr!.on('data', (d: Uint8Array) => (out = (out + new TextDecoder().decode(d)).slice(-4000)));
  return { child, output: () => out };
}

async function stop(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
  children.delete(child);
}

/** CPU time (user + system, all threads) of a process so far, in µs (taskset execs, so the PID is the server's). */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S) * 1e6;
}

async function waitFor(url: string, check: () => Promise<boolean>, what: () => string) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${url} not ready:\n${what()}`);
}

function wrk(url: string, seconds: number, pathsFile: string): LoadResult {
  const { command, args } = pinned(0, 'wrk', [
    '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', '-H', `Host: localhost:${new URL(url).port}`,
    '-s', join(ROOT, 'bench/wrk-paths.lua'), url, '--', pathsFile,
  ]);
  const run = spawnSync(command, args, { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const line = run.stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`wrk printed no result:\n${run.stdout}${run.stderr}`);
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as LoadResult;
}

async function main() {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) throw new Error('npm run bench:gateway needs wrk: apt-get install -y wrk');
  const caddy = findCaddy();
  if (!caddy) throw new Error(`npm run bench:gateway needs caddy: ${CADDY_INSTALL_HINT}`);
  const dir = mkdtempSync(join(tmpdir(), 'hop-bench-gateway-'));
  try {
    const databaseUrl = `file:${join(dir, 'hop.db')}`;
    await seedDatabase(databaseUrl, LINKS);
    const pathsFile = join(dir, 'paths.txt');
    writeFileSync(pathsFile, zipfSample(LINKS, 1.1, 100_000).draws.map((n) => `/${slugOf(n)}\n`).join(''));

    const [barePort, hopPort, gatewayPort, adminPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const bare = start(process.execPath, ['bench/bare.ts'], { ...process.env, PORT: String(barePort), HOST: '127.0.0.1' });
    const hopEnv: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOP_')) hopEnv[k] = v;
    const hop = start(process.execPath, ['--max-semi-space-size=8', 'src/cli/hop.ts', 'serve', '--role', 'redirect'], {
      ...hopEnv,
      PORT: String(hopPort),
      HOST: '127.0.0.1',
      HOP_DATABASE_URL: databaseUrl,
      HOP_CLICKS: 'off',
      HOP_RATE_LIMIT: 'off',
      HOP_LOG_LEVEL: 'warn',
      HOP_CLIENT_IP_HEADER: 'x-forwarded-for',
    });
    const storage = join(dir, 'caddy');
    const gateway = start(caddy, ['run', '--config', join(ROOT, 'deploy/gateway/Caddyfile'), '--adapter', 'caddyfile'], {
      ...process.env,
      XDG_CONFIG_HOME: join(dir, 'xdg-config'),
      XDG_DATA_HOME: join(dir, 'xdg-data'),
      HOP_GATEWAY_SITE: `https://localhost:${gatewayPort}`,
      HOP_GATEWAY_ADMIN: `127.0.0.1:${adminPort}`,
      HOP_GATEWAY_STORAGE: storage,
      HOP_GATEWAY_LOG_LEVEL: 'WARN',
      HOP_API_UPSTREAMS: `127.0.0.1:${hopPort}`,
      HOP_REDIRECT_UPSTREAMS: `127.0.0.1:${hopPort}`,
    });
    const direct = `http://127.0.0.1:${hopPort}`;
    const through = `https://localhost:${gatewayPort}`;
    await waitFor(direct, async () => (await fetch(`${direct}/readyz`)).ok, hop.output);
    const caFile = join(storage, 'pki/authorities/local/root.crt');
    await waitFor(through, async () => existsSync(caFile) && spawnSync('curl', ['-sf', '--cacert', caFile, `${through}/readyz`]).status === 0, gateway.output);
    const redirected = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', caFile, `${through}/${slugOf(1)}`], { encoding: 'utf8' });
    if (redirected.stdout !== '302') throw new Error(`the gateway answered ${redirected.stdout}, expected 302`);

    const targets: { name: string; url: string; pids: Record<string, number> }[] = [
      { name: 'bare node:http 302 (direct)', url: `http://127.0.0.1:${barePort}`, pids: { bare: bare.child.pid! } },
      { name: 'hop redirect role (direct, HTTP)', url: direct, pids: { hop: hop.child.pid! } },
      { name: 'hop through Caddy (HTTPS)', url: through, pids: { hop: hop.child.pid!, caddy: gateway.child.pid! } },
    ];
    console.log(`gateway benchmark: ${new Date().toISOString()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`  wrk -t1 -c${CONNECTIONS}, ${WARMUP_S} s warm-up + ${DURATION_S} s per target; pinning ${pinning ? 'servers on CPU 1, wrk on CPU 0' : 'off'}`);
    const rows = [['target', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'hop CPU µs/req', 'Caddy CPU µs/req']];
    for (const target of targets) {
      wrk(target.url, WARMUP_S, pathsFile);
      const before = Object.fromEntries(Object.entries(target.pids).map(([k, pid]) => [k, cpuUs(pid)]));
      const result = wrk(target.url, DURATION_S, pathsFile);
      const perRequest = (k: string) =>
        k in target.pids ? ((cpuUs(target.pids[k]!) - before[k]!) / result.requests).toFixed(1) : '';
      const errors = result.non3xx + Object.values(result.errors).reduce((a, b) => a + b, 0);
      rows.push([
        target.name,
        String(Math.round(result.requests / (result.durationUs / 1e6))),
        (result.p50Us / 1000).toFixed(2),
        (result.p99Us / 1000).toFixed(2),
        String(errors),
        'hop' in target.pids ? perRequest('hop') : perRequest('bare'),
        perRequest('caddy'),
      ]);
      if (errors) throw new Error(`${target.name}: ${errors} errors or non-3xx answers`);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const [i, r] of rows.entries()) {
      console.log(r.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join('  '));
      if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    }
    console.log('  (the bare row\'s CPU column is the bare server\'s own)');
    await Promise.all([stop(gateway.child), stop(hop.child), stop(bare.child)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  console.error(`bench:gateway: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
