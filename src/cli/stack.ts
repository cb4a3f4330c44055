/**
 * `npm run stack`: hop's whole topology on loopback from one command. A sqld primary, a redis-server with its
 * Upstash REST front (upstash-rest.ts), two redirect processes and one API process (`hop serve --role ...`), one click
 * consumer (`hop consume`, HOP_QUEUE=redis) and Caddy with deploy/gateway/Caddyfile, each on a free port. Migrates the
 * database, creates the default workspace (its admin key printed once), prints the HTTPS URL and the CA file to
 * trust, and on Ctrl-C or SIGTERM stops everything it started, by PID. HOP_STACK_RUNTIME=bun runs hop on Bun.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadServerConfig } from '../config.ts';
import { composeForProcess } from '../composition/process.ts';
import { migrateDatabase, openDatabase } from '../runtimes/database.ts';
import { announceKey } from '../runtimes/server.ts';
import { findRedisServer, REDIS_INSTALL_HINT, startRedis } from './redis-server.ts';
import { findSqld, freePort, SQLD_INSTALL_HINT, startSqld, webSocketUrl } from './sqld.ts';
import { startUpstashRest } from './upstash-rest.ts';

export const CADDY_INSTALL_HINT = 'apt-get install -y caddy (Debian/Ubuntu), brew install caddy (macOS), or set HOP_CADDY_BIN';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CADDYFILE = join(ROOT, 'deploy/gateway/Caddyfile');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The caddy executable, or undefined when none is installed. */
export function findCaddy(env: Record<string, string | undefined> = process.env): string | undefined {
  const bin = env.HOP_CADDY_BIN || 'caddy';
  return spawnSync(bin, ['version'], { stdio: 'ignore' }).status === 0 ? bin : undefined;
}

/** What the stack needs installed and is not, with the install command of each. */
export function missingForStack(): string[] {
  const missing = [];
  if (!findSqld()) missing.push(`sqld: ${SQLD_INSTALL_HINT}`);
  if (!findRedisServer()) missing.push(`redis-server: ${REDIS_INSTALL_HINT}`);
  if (!findCaddy()) missing.push(`caddy: ${CADDY_INSTALL_HINT}`);
  return missing;
}

interface Managed {
  name: string;
  child: ChildProcess;
  /** http://127.0.0.1:PORT for a server; undefined for the consumer and the gateway. */
  url: string | undefined;
}

/** Spawns a child whose output lines are printed with its name in front; it is stopped by PID. */
function launch(name: string, command: string, args: string[], env: Record<string, string | undefined>, url?: string): Managed {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.on('data', (d: Uint8Array) => {
      const lines = (rest + new TextDecoder().decode(d)).split('\n');
      rest = lines.pop()!;
      for (const line of lines) if (line) console.log(`[${name}] ${line}`);
    });
  }
  child.once('exit', (code, signal) => {
    if (!stopping.has(child)) console.log(`[${name}] exited with ${code ?? signal} (the stack goes on without it)`);
  });
  // Whatever ends this process, no child outlives it.
  process.once('exit', () => void (running(child) && child.kill('SIGKILL')));
  return { name, child, url };
}

/** Children being stopped on purpose: their exit is not reported. */
const stopping = new WeakSet<ChildProcess>();

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

async function waitFor(what: string, managed: Managed | undefined, ready: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (managed && !running(managed.child)) throw new Error(`${what} exited with ${managed.child.exitCode ?? managed.child.signalCode}`);
    if (await ready().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} was not ready within ${timeoutMs} ms`);
}

/** GET over HTTPS to the gateway, trusting only its CA (Node's fetch takes no CA file). */
function httpsStatus(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: readFileSync(ca), timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export interface StackProcess {
  name: string;
  pid: number;
  url: string | undefined;
}

export interface Stack {
  /** The gateway's public origin: https://localhost:PORT. */
  url: string;
  /** The certificate of Caddy's local CA, to trust (`curl --cacert`). */
  caFile: string;
  /** The default workspace's admin key. */
  adminKey: string;
  processes: StackProcess[];
  /** Stops every process by PID (the gateway first, the stores last) and removes the temporary directory. */
  stop(): Promise<void>;
}

/**
 * Starts the topology. `env` is the environment the hop processes inherit (HOP_RATE_LIMIT_*, HOP_LOG_LEVEL...); the
 * stack sets their database, Redis, roles, ports and the gateway's client-address header over it.
 */
export async function startStack(env: Record<string, string | undefined> = process.env): Promise<Stack> {
  const missing = missingForStack();
  if (missing.length) throw new Error(`npm run stack needs:\n  ${missing.join('\n  ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'hop-stack-'));
  const managed: Managed[] = [];
  const stores: { stop(): Promise<void> }[] = [];
  let stopped = false;

  async function stop() {
    if (stopped) return;
    stopped = true;
    // The gateway first (no new requests), then the servers and the consumer (SIGTERM: it finishes its batch), then
    // the stores they write to. Each by its PID, SIGKILL after 5 s.
    for (const group of [managed.filter((m) => m.name === 'gateway'), managed.filter((m) => m.name !== 'gateway')]) {
      await Promise.all(
        group.map(async ({ name, child }) => {
          if (!running(child)) return;
          stopping.add(child);
          const exited = new Promise((r) => child.once('exit', r));
          // SIGINT: a server skips its drain delay (nothing routes to it any more); the consumer stops the same way.
          child.kill(name === 'gateway' ? 'SIGTERM' : 'SIGINT');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }),
      );
    }
    for (const store of stores.reverse()) await store.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }

  try {
    const sqld = await startSqld({ dir: join(dir, 'sqld') });
    stores.push(sqld);
    process.once('exit', () => sqld.signal('SIGKILL'));
    const redis = await startRedis();
    stores.push(redis);
    const rest = await startUpstashRest({ redisPort: redis.port });
    stores.push({ stop: () => rest.close() });

    const [gatewayPort, adminPort, apiPort, redirectPort1, redirectPort2] = await Promise.all(
      Array.from({ length: 5 }, () => freePort()),
    );
    const url = `https://localhost:${gatewayPort}`;
    const hopEnv: Record<string, string | undefined> = {
      ...env,
      HOST: '127.0.0.1',
      HOP_BASE_URL: url,
      // By WebSocket: what a Node or Bun process should use to reach sqld (docs/architecture.md).
      HOP_DATABASE_URL: webSocketUrl(sqld.url),
      HOP_DATABASE_SYNC_URL: undefined,
      HOP_QUEUE: 'redis',
      HOP_CACHE: 'redis',
      HOP_RATE_LIMIT: 'redis',
      HOP_RATE_LIMIT_SALT: env.HOP_RATE_LIMIT_SALT || randomBytes(16).toString('hex'),
      HOP_REDIS_URL: rest.url,
      HOP_REDIS_TOKEN: rest.token,
      // Caddy sets X-Forwarded-For to its peer (deploy/gateway/Caddyfile).
      HOP_CLIENT_IP_HEADER: 'x-forwarded-for',
      HOP_LOG_LEVEL: env.HOP_LOG_LEVEL || 'warn',
    };

    // Migrations and the default workspace, as `hop init` does, before any server starts.
    const config = loadServerConfig({ ...hopEnv, PORT: String(gatewayPort) });
    const db = await openDatabase(config);
    let adminKey: string;
    try {
      await migrateDatabase(db);
      const created = await composeForProcess(config, { db }).services.workspaces.bootstrapDefaultWorkspace(new Date());
      if (!created) throw new Error('the new database already had a workspace');
      announceKey(config, created);
      adminKey = created.apiKey.key;
    } finally {
      db.close();
    }

    const bun = (env.HOP_STACK_RUNTIME ?? 'node') === 'bun';
    if (!['node', 'bun'].includes(env.HOP_STACK_RUNTIME ?? 'node')) throw new Error('HOP_STACK_RUNTIME must be node or bun');
    const runtime = bun ? join(ROOT, 'node_modules/.bin/bun') : process.execPath;
    const hop = join(ROOT, 'src/cli/hop.ts');
    const server = (name: string, role: string, port: number) =>
      bun
        ? launch(name, runtime, [join(ROOT, 'src/runtimes/bun.ts')], { ...hopEnv, HOP_ROLE: role, PORT: String(port), HOP_CLICK_CONSUMER: 'off' }, `http://127.0.0.1:${port}`)
        : launch(name, runtime, ['--max-semi-space-size=8', hop, 'serve', '--role', role], { ...hopEnv, PORT: String(port), HOP_CLICK_CONSUMER: 'off' }, `http://127.0.0.1:${port}`);
    managed.push(server('api', 'api', apiPort!), server('redirect-1', 'redirect', redirectPort1!), server('redirect-2', 'redirect', redirectPort2!));
    let consumerReady = false;
    const consumer = launch('consumer', runtime, [hop, 'consume'], { ...hopEnv, HOP_LOG_LEVEL: 'info' });
    consumer.child.stdout!.on('data', (d: Uint8Array) => {
      if (new TextDecoder().decode(d).includes('"msg":"consuming"')) consumerReady = true;
    });
    managed.push(consumer);
    await Promise.all([
      ...managed
        .filter((m) => m.url)
        .map((m) => waitFor(m.name, m, async () => (await fetch(`${m.url}/readyz`, { signal: AbortSignal.timeout(2000) })).ok)),
      waitFor('consumer', consumer, async () => consumerReady),
    ]);

    const storage = join(dir, 'caddy');
    const gateway = launch('gateway', findCaddy(env)!, ['run', '--config', CADDYFILE, '--adapter', 'caddyfile'], {
      ...env,
      // Caddy's own files (autosaved configuration) stay in the temporary directory too.
      XDG_CONFIG_HOME: join(dir, 'xdg-config'),
      XDG_DATA_HOME: join(dir, 'xdg-data'),
      HOP_GATEWAY_SITE: url,
      HOP_GATEWAY_BIND: '127.0.0.1',
      HOP_GATEWAY_ADMIN: `127.0.0.1:${adminPort}`,
      HOP_GATEWAY_STORAGE: storage,
      HOP_GATEWAY_LOG_LEVEL: env.HOP_GATEWAY_LOG_LEVEL || 'WARN',
      HOP_API_UPSTREAMS: `127.0.0.1:${apiPort}`,
      HOP_REDIRECT_UPSTREAMS: `127.0.0.1:${redirectPort1} 127.0.0.1:${redirectPort2}`,
    });
    managed.push(gateway);
    const caFile = join(storage, 'pki/authorities/local/root.crt');
    await waitFor('gateway', gateway, async () => existsSync(caFile) && (await httpsStatus(`${url}/readyz`, caFile)) === 200);

    return {
      url,
      caFile,
      adminKey,
      processes: managed.map((m) => ({ name: m.name, pid: m.child.pid!, url: m.url })),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function main() {
  let stack: Stack;
  try {
    stack = await startStack(process.env);
  } catch (err) {
    console.error(err instanceof ConfigError || err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
  const rows = stack.processes.map((p) => `    ${p.name.padEnd(11)} pid ${String(p.pid).padEnd(8)} ${p.url ?? ''}`);
  console.log(
    [
      '',
      `  hop is up behind the gateway: ${stack.url}`,
      '',
      `    export HOP_URL=${stack.url}`,
      `    export HOP_CA=${stack.caFile}`,
      '    curl --cacert "$HOP_CA" "$HOP_URL/v1/workspace" -H "Authorization: Bearer $HOP_KEY"',
      '',
      '  Processes (each /metrics is on its own address, not behind the gateway):',
      ...rows,
      '',
      '  Ctrl-C stops everything; the data lives only as long as the stack.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`stack: ${signal}, stopping every process`);
    await stack.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
