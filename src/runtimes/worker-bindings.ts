/**
 * What both Workers do with their bindings before anything else: the redirect Worker (worker.ts) and the click
 * consumer (worker-consumer.ts) read their configuration through the same zod schema plus the rules of a Worker
 * (no file system, so a remote database), and open libSQL over HTTP with a deadline on every call. Nothing here
 * may import the app or the clicks module: each Worker bundles only what it uses.
 */
// The HTTP client alone: the config accepts only libsql:// (HTTP on the web client too) and http(s):// on a Worker,
// so @libsql/client/web's WebSocket client (ws://, wss://) was dead weight in both Workers' bundles.
import { createClient } from '@libsql/client/http';
import { ConfigError, loadConfig, type Config, type ConfigProblem } from '../config.ts';
import { createDatabase, deadlineFetch, guardedClient, type Database } from '../platform/db/client.ts';
import { createShardSet, loadBucketMap, type ShardSet } from '../platform/db/shards.ts';
import type { ScopeStore } from '../platform/tracing.ts';

/** Bindings: plain-text vars and secrets (strings), queue producers and, with later issues, KV and limiters. */
export type WorkerEnv = Record<string, unknown>;

/** Configuration as strings: wrangler `vars` may be JSON numbers or booleans, which the schema reads as text. */
export function configFromBindings(env: WorkerEnv): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(env)) {
    if (typeof value === 'string') out[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') out[key] = String(value);
  }
  return out;
}

/**
 * The configuration of a Worker; throws one ConfigError naming every bad variable, like loadConfig, with the rules
 * of a Worker (no file system, no @upstash/redis) among them.
 */
export function workerConfig(env: WorkerEnv): Config {
  // Cloudflare sets cf-ipcountry on every request and overwrites a client's own: on Workers it is trusted by default.
  const vars: Record<string, string | undefined> = { HOP_GEO_HEADER: 'cf-ipcountry', ...configFromBindings(env) };
  const problems: ConfigProblem[] = [];
  const urlMissing = vars.HOP_DATABASE_URL === undefined || vars.HOP_DATABASE_URL === '';
  if (urlMissing) {
    problems.push({ variable: 'HOP_DATABASE_URL', message: 'is required on Workers (libsql:// for Turso, http(s):// for sqld)' });
  }
  let config: Config | undefined;
  try {
    config = loadConfig(vars);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  if (config && !urlMissing && (config.databaseUrl.startsWith('file:') || config.databaseSyncUrl)) {
    problems.push({ variable: 'HOP_DATABASE_URL', message: 'a Worker has no file system; use libsql:// (Turso) or http(s):// (sqld)' });
  }
  if (config?.databaseShards?.some((url) => url.startsWith('file:'))) {
    problems.push({ variable: 'HOP_DATABASE_SHARDS', message: 'a Worker has no file system; every shard must be libsql:// (Turso) or http(s):// (sqld)' });
  }
  if (config?.rateLimit.mode === 'redis') {
    // @upstash/redis would add ~17 KiB gzip to a Worker that has a hard size budget; the bindings do the same job.
    problems.push({ variable: 'HOP_RATE_LIMIT', message: 'redis is for Node and Bun; on Workers use cloudflare (the ratelimits bindings) or memory' });
  }
  if (problems.length || !config) throw new ConfigError(problems);
  return config;
}

/** workerConfig, with a configuration error logged once (the Worker's logs are where the operator finds it). */
export function tryWorkerConfig(env: WorkerEnv): Config | ConfigError {
  try {
    return workerConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: err.message }));
      return err;
    }
    throw err;
  }
}

/** libSQL over HTTP (Turso `libsql://`, sqld `http(s)://`) for one isolate, every call under the deadline. */
export function workerDatabase(config: Config, scopes?: ScopeStore): Database {
  const timeoutMs = config.databaseTimeoutMs;
  const client = guardedClient(
    () =>
      createClient({
        url: config.databaseUrl,
        authToken: config.databaseAuthToken,
        fetch: deadlineFetch(timeoutMs, scopes),
        // The client is shared by every request of the isolate, and its default limit of 20 calls in flight queues
        // the 21st behind another request's fetch; workerd does not carry I/O across requests, so that call never
        // ran and the isolate stopped answering (docs/perf-history.md). Each call has its deadline instead. (0 does
        // not lift the limit: the client reads it as "use the default".)
        concurrency: Number.MAX_SAFE_INTEGER,
      }),
    { timeoutMs, queueTimeoutMs: config.databaseQueueTimeoutMs, remote: true, writers: config.databaseWriters },
  );
  return createDatabase(client);
}

/**
 * HOP_DATABASE_SHARDS on a Worker: every shard and replica opened over HTTP like the control database (a replica with
 * HOP_DATABASE_REPLICA_TIMEOUT_MS as its deadline), and the ShardSet made once the bucket map is read from the
 * control database. The read is asked again by each call until one succeeds (a promise is not shared across
 * requests: workerd ties I/O to the request that started it); then the set is kept for the isolate's life.
 * Undefined without HOP_DATABASE_SHARDS.
 */
export function workerShards(config: Config, control: Database, scopes?: ScopeStore): (() => Promise<ShardSet>) | undefined {
  if (!config.databaseShards) return undefined;
  const timeoutMs = config.databaseReplicaTimeoutMs;
  const primaries = config.databaseShards.map((url) => workerDatabase({ ...config, databaseUrl: url }, scopes));
  const replicas = config.databaseShardReplicas.map((urls) =>
    urls.map((url) => workerDatabase({ ...config, databaseUrl: url, databaseTimeoutMs: timeoutMs, databaseQueueTimeoutMs: timeoutMs }, scopes)),
  );
  let set: ShardSet | undefined;
  return async () => (set ??= createShardSet(control, primaries, await loadBucketMap(control, primaries.length), {
      replicas: new Map(primaries.map((primary, i) => [primary, replicas[i] ?? []])),
    }));
}

/**
 * One value per set of bindings: the bindings object is the same for every request and batch an isolate serves
 * (a new deployment or a changed secret starts new isolates), so keying by it builds once and still follows a
 * change.
 */
export function perBindings<T extends object>(build: (env: WorkerEnv) => T): (env: WorkerEnv) => T {
  const built = new WeakMap<WorkerEnv, T>();
  return (env) => {
    let entry = built.get(env);
    if (!entry) {
      entry = build(env);
      built.set(env, entry);
    }
    return entry;
  };
}
