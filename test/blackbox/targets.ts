/**
 * The real processes the black-box suites run against: hop on Node or Bun over an embedded file or a local sqld,
 * and hop as Workers in workerd (one `wrangler dev` with the redirect Worker and the click consumer) over sqld.
 * Each target gets its own temp dir and free ports, starts in beforeAll and is stopped by process group in
 * afterAll. A missing runtime (sqld, bun) skips its target with the install hint, except under CI=true, where it fails.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { SQLD_INSTALL_HINT, findSqld, startSqld, webSocketUrl, type Sqld } from '../../src/cli/sqld.ts';
import { GENEROUS_RATE_LIMITS } from '../support/rate-limits.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUN = join(ROOT, 'node_modules/.bin/bun');
const WRANGLER = join(ROOT, 'node_modules/wrangler/bin/wrangler.js');

export type Runtime = 'node' | 'bun' | 'workerd';
export type Storage = 'file' | 'sqld';

export interface TargetSpec {
  runtime: Runtime;
  storage: Storage;
  /** Extra configuration (environment variables, or `--var`s for workerd). */
  env?: Record<string, string>;
  /**
   * Started once `/livez` answers rather than `/readyz`: for a target whose shared cache is hostile on purpose,
   * which /readyz rightly reports as failed.
   */
  liveOnly?: boolean;
  /**
   * HOP_DATABASE_SHARDS with this many shards beside the control database: for `sqld`, a sqld process each; for
   * `file`, a file each.
   */
  shards?: number;
  /** With `sqld` shards: a sqld replica of each shard, listed after it (`primary|replica`). */
  replicas?: boolean;
  /**
   * With `sqld`, how hop reaches it: `http` (`http://`, the default) or `ws`, @libsql/client's WebSocket transport
   * (`libsql://127.0.0.1:P?tls=0`).
   */
  transport?: 'http' | 'ws';
}

/** A local sqld that can be crashed and started again on the same directory and ports. */
export interface SqldHandle {
  readonly current: Sqld;
  readonly url: string;
  /** Starts a new sqld on the same data directory and ports (after a SIGKILL of the current one). */
  restart(): Promise<void>;
}

export interface Target {
  name: string;
  runtime: Runtime;
  storage: Storage;
  /** Where requests go: http://127.0.0.1:PORT. */
  baseUrl: string;
  /** HOP_BASE_URL, the origin of short links on the default domain: http://localhost:PORT. */
  publicUrl: string;
  port: number;
  adminToken: string;
  sqld: SqldHandle | undefined;
  /** The shards' sqld processes (TargetSpec.shards with `sqld`), in HOP_DATABASE_SHARDS order. */
  shardSqlds: SqldHandle[];
  /** The shards' replicas (TargetSpec.replicas), one per shard, in the same order. */
  shardReplicas: Sqld[];
  output(): string;
  stop(): Promise<void>;
}

export const targetName = (spec: TargetSpec) =>
  `${spec.runtime} + ${spec.storage}${spec.transport === 'ws' ? ' over WebSocket' : ''}${spec.shards ? ` x ${spec.shards} shards` : ''}${spec.replicas ? ' with a replica each' : ''}`;

/** Why this target cannot run here, or undefined when it can. */
export function missingPrerequisite(spec: TargetSpec): string | undefined {
  if (spec.storage === 'sqld' && !findSqld()) return `sqld is not installed: ${SQLD_INSTALL_HINT}`;
  if (spec.runtime === 'bun' && !existsSync(BUN)) return 'bun is not installed: npm install (bun is a devDependency)';
  if (spec.runtime === 'workerd' && !existsSync(WRANGLER)) return 'wrangler is not installed: npm install';
  return undefined;
}

// Every sqld started here is killed when the test process exits, even if a run is cut short (it is not detached,
// so process.ts's group safety net does not cover it).
const sqlds = new Set<Sqld>();
process.once('exit', () => {
  for (const s of sqlds) s.signal('SIGKILL');
});

async function startTrackedSqld(options: Parameters<typeof startSqld>[0]): Promise<Sqld> {
  const s = await startSqld(options);
  sqlds.add(s);
  s.child.once('exit', () => sqlds.delete(s));
  return s;
}

/** A local sqld on `dir` that can be killed and started again on the same ports (SqldHandle.restart). */
export async function sqldHandle(dir: string): Promise<SqldHandle> {
  const httpPort = await freePort();
  const grpcPort = await freePort();
  let current = await startTrackedSqld({ dir, httpPort, grpcPort });
  return {
    get current() {
      return current;
    },
    url: current.url,
    async restart() {
      await current.stop();
      // The old process's port can take a moment to be released; startSqld fails fast if sqld exits on it.
      for (let attempt = 1; ; attempt++) {
        try {
          current = await startTrackedSqld({ dir, httpPort, grpcPort });
          return;
        } catch (err) {
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
  };
}

const ADDRESS_IN_USE = /already in use|EADDRINUSE|Address already in use/i;

/** Probes /livez instead of the /readyz startProcess asks for. */
const liveProbe = async (url: string) =>
  (await fetch(url.replace(/\/readyz$/, '/livez'), { signal: AbortSignal.timeout(5000) })).status;

/** Starts one target; retried on a port another process took between freePort() and the bind. */
export async function startTarget(spec: TargetSpec): Promise<Target> {
  const reason = missingPrerequisite(spec);
  if (reason) throw new Error(reason);
  const dir = mkdtempSync(join(tmpdir(), `hop-bb-${spec.runtime}-${spec.storage}-`));
  const adminToken = `blackbox-operator-${randomBytes(16).toString('hex')}`;
  let sqld: SqldHandle | undefined;
  const shardSqlds: SqldHandle[] = [];
  const shardReplicas: Sqld[] = [];
  const stopShards = () => Promise.all([...shardReplicas.map((s) => s.stop()), ...shardSqlds.map((s) => s.current.stop())]);
  try {
    let shards: string[] = [];
    if (spec.storage === 'sqld') {
      sqld = await sqldHandle(join(dir, 'sqld'));
      for (let i = 0; i < (spec.shards ?? 0); i++) shardSqlds.push(await sqldHandle(join(dir, `sqld-shard-${i}`)));
      if (spec.replicas) {
        for (const [i, primary] of shardSqlds.entries()) {
          shardReplicas.push(await startTrackedSqld({ dir: join(dir, `sqld-shard-${i}-replica`), primaryGrpcUrl: primary.current.grpcUrl }));
        }
      }
      shards = shardSqlds.map((s, i) => [s.url, ...(shardReplicas[i] ? [shardReplicas[i].url] : [])].join('|'));
      await run(process.execPath, [join(ROOT, 'src/cli/hop.ts'), 'migrate'], {
        cwd: ROOT,
        env: { ...process.env, HOP_DATABASE_URL: sqld.url, HOP_LOG_LEVEL: 'warn', ...(shards.length ? { HOP_DATABASE_SHARDS: shards.join(',') } : {}) },
      });
    } else {
      shards = Array.from({ length: spec.shards ?? 0 }, (_, i) => `file:${join(dir, `shard-${i}.db`)}`);
    }
    if (shards.length) spec = { ...spec, env: { ...spec.env, HOP_DATABASE_SHARDS: shards.join(',') } };
    const databaseUrl = !sqld ? `file:${join(dir, 'hop.db')}` : spec.transport === 'ws' ? webSocketUrl(sqld.url) : sqld.url;
    for (let attempt = 1; ; attempt++) {
      try {
        const { hop, port } = await startServer(spec, dir, databaseUrl, adminToken);
        return {
          name: targetName(spec),
          runtime: spec.runtime,
          storage: spec.storage,
          baseUrl: `http://127.0.0.1:${port}`,
          publicUrl: `http://localhost:${port}`,
          port,
          adminToken,
          sqld,
          shardSqlds,
          shardReplicas,
          output: hop.output,
          async stop() {
            await hop.stop();
            await sqld?.current.stop();
            await stopShards();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      } catch (err) {
        if (attempt >= 3 || !ADDRESS_IN_USE.test(String(err))) throw err;
      }
    }
  } catch (err) {
    await sqld?.current.stop();
    await stopShards();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startServer(spec: TargetSpec, dir: string, databaseUrl: string, adminToken: string) {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const vars: Record<string, string> = {
    HOP_DATABASE_URL: databaseUrl,
    HOP_ADMIN_TOKEN: adminToken,
    HOP_BASE_URL: `http://localhost:${port}`,
    HOP_LOG_LEVEL: 'warn',
    // Every request of a suite comes from 127.0.0.1: limits it never reaches, in process also on workerd (the
    // bindings of wrangler.toml are fixed at production's limits); rateLimitSuite's target sets small ones.
    HOP_RATE_LIMIT: 'memory',
    // The suite's geo tests send cf-ipcountry, as Cloudflare's edge would (trusted by default only on workerd).
    HOP_GEO_HEADER: 'cf-ipcountry',
    ...GENEROUS_RATE_LIMITS,
    ...spec.env,
  };
  if (spec.runtime === 'workerd') {
    const inspector = await freePort();
    // Both Workers in one session, as `npm run dev` runs them: the redirect (first, it serves the port) and the click
    // consumer, which share the session's local queue, so clicks are really consumed and stored.
    const args = [WRANGLER, 'dev', '-c', join(ROOT, 'wrangler.toml'), '-c', consumerConfig(dir, vars)];
    args.push('--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector));
    // Its own persistence dir, so that parallel runs share no .wrangler state.
    args.push('--env', '', '--persist-to', join(dir, 'wrangler'));
    for (const [name, value] of Object.entries(vars)) args.push('--var', `${name}:${value}`);
    if (existsSync(join(ROOT, '.dev.vars'))) {
      throw new Error('.dev.vars exists: the click consumer would read it instead of the test database; move it away to run the workerd target');
    }
    const env = {
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_SEND_METRICS: 'false',
      // `--var` reaches only the session's first Worker; the consumer takes its database (a required secret of
      // wrangler.consumer.toml) and its vars from the environment.
      ...vars,
      // A dev registry of its own: a queue without a local consumer (the dead-letter queue) is otherwise forwarded
      // to whichever other `wrangler dev` on this machine consumes one of that name, and this session's consumer
      // would receive other sessions' clicks.
      WRANGLER_REGISTRY_PATH: join(dir, 'wrangler-registry'),
    };
    return { port, hop: await startProcess(process.execPath, args, env, baseUrl, 45_000) };
  }
  const env = { ...vars, PORT: String(port), HOST: '127.0.0.1', HOP_SHUTDOWN_DELAY_MS: '0' };
  const entry = join(ROOT, `src/runtimes/${spec.runtime}.ts`);
  const hop: Running =
    spec.runtime === 'bun'
      ? await startProcess(BUN, [entry], env, baseUrl)
      : await startProcess(process.execPath, [entry], env, baseUrl, 20_000, spec.liveOnly ? liveProbe : undefined);
  return { port, hop };
}

/**
 * The click consumer's wrangler config for this target: wrangler.consumer.toml itself, or, with shards, a copy in the
 * target's dir with HOP_DATABASE_SHARDS among its [vars] (the consumer reads from the environment only the secrets
 * it declares, and the shards are configuration, not a secret: a deployment sets them there too).
 */
function consumerConfig(dir: string, vars: Record<string, string>): string {
  const original = join(ROOT, 'wrangler.consumer.toml');
  if (!vars.HOP_DATABASE_SHARDS) return original;
  const copy = join(dir, 'wrangler.consumer.toml');
  const text = readFileSync(original, 'utf8')
    .replace(/^main = "(.*)"$/m, (_, path: string) => `main = ${JSON.stringify(join(ROOT, path))}`)
    .replace(/"\.\/(src\/[^"]+)"/g, (_, path: string) => JSON.stringify(join(ROOT, path)))
    .replace(/^\[vars\]$/m, `[vars]\nHOP_DATABASE_SHARDS = ${JSON.stringify(vars.HOP_DATABASE_SHARDS)}`);
  writeFileSync(copy, text);
  return copy;
}

/**
 * A describe block with a running target: started before its tests, stopped after them. A target whose runtime is
 * not installed is skipped with the install hint, or fails under CI=true.
 */
export function describeTarget(spec: TargetSpec, body: (target: () => Target) => void, title = targetName(spec)) {
  const reason = missingPrerequisite(spec);
  if (reason && process.env.CI === 'true') {
    describe(title, () => {
      it('has its runtime installed', () => {
        throw new Error(reason);
      });
    });
    return;
  }
  if (reason) console.warn(`[blackbox] ${title} skipped: ${reason}`);
  describe.skipIf(reason !== undefined)(reason ? `${title} (skipped: ${reason})` : title, () => {
    let target: Target | undefined;
    beforeAll(async () => {
      target = await startTarget(spec);
    }, 90_000);
    afterAll(async () => {
      await target?.stop();
    }, 30_000);
    body(() => {
      if (!target) throw new Error(`${title} did not start`);
      return target;
    });
  });
}
