/**
 * The configuration schema: environment variables (or Worker bindings) in, a typed `Config` out; `Config` is what
 * the schema outputs, so the two cannot drift apart. Parsed once at the runtime boundary; a bad value stops the
 * start with a ConfigError naming every bad variable, formatted one way for every runtime and the CLI.
 */
import * as z from 'zod';

/** A decimal integer in [min, max]; `0x50` or `1e3` are refused rather than silently read. */
const positiveInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a decimal integer')
    .transform(Number)
    .pipe(z.number().min(min).max(max));

/** `<limit>/<window>`: that many requests per fixed window of seconds, minutes or hours, e.g. `600/60s`, `10000/1h`. */
const QUOTA = /^(\d{1,10})\/(\d{1,5})([smh])$/;
const QUOTA_HINT = 'must be <limit>/<window>, e.g. 600/60s (a window in s, m or h, at most 24h)';
const UNIT_S = { s: 1, m: 60, h: 3600 } as const;

function parseQuota(value: string): RateQuota | undefined {
  const m = QUOTA.exec(value.trim());
  if (!m) return undefined;
  const limit = Number(m[1]);
  const windowS = Number(m[2]) * UNIT_S[m[3] as keyof typeof UNIT_S];
  return limit >= 1 && limit <= 1e9 && windowS >= 1 && windowS <= 86_400 ? { limit, windowS } : undefined;
}

const quota = z.string().transform((value, ctx) => parseQuota(value) ?? (ctx.addIssue(QUOTA_HINT), z.NEVER));

/** An API key's id as `GET /v1/keys` shows it (newId('key'): `key_` and 32 hex digits). */
const KEY_ID = /^key_[0-9a-f]{32}$/;

/** `key_…=1200/60s,key_…=10/1s`: one quota per API key id, comma separated; each key at most once. */
const keyOverrides = z.string().transform((value, ctx) => {
  const out = new Map<string, RateQuota>();
  for (const [i, raw] of value.split(',').entries()) {
    const entry = raw.trim();
    const at = entry.indexOf('=');
    const id = at === -1 ? entry : entry.slice(0, at);
    const limit = at === -1 ? undefined : parseQuota(entry.slice(at + 1));
    // Named by position, not quoted: a misplaced API key would otherwise be echoed into the logs.
    const where = `entry ${i + 1}`;
    if (id.startsWith('hop_')) ctx.addIssue(`${where}: that is an API key; name its id (key_...)`);
    else if (!KEY_ID.test(id)) ctx.addIssue(`${where}: must be <key id>=<limit>/<window>, e.g. key_0193...=1200/60s`);
    else if (!limit) ctx.addIssue(`${where}: after "=", ${QUOTA_HINT}`);
    else if (out.has(id)) ctx.addIssue(`${where}: ${id} is given twice`);
    else out.set(id, limit);
  }
  return out as ReadonlyMap<string, RateQuota>;
});

const baseUrl = z
  .url({ protocol: /^https?$/ })
  .refine((value) => {
    const u = URL.parse(value);
    if (!u) return false;
    return (u.pathname === '/' || u.pathname === '') && !u.search && !u.hash && !u.username && !u.password;
  }, 'must be an http(s) origin without path, query or credentials')
  .transform((value) => new URL(value).origin);

/** Whether `hostname` (as URL.hostname gives it) is this machine: localhost, 127.0.0.0/8 or [::1]. */
export const isLoopbackHost = (hostname: string) =>
  hostname === 'localhost' || hostname === '[::1]' || /^127(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(hostname);

/**
 * What is wrong with the URL of an identity provider (its issuer, discovery or JWKS document), or undefined: it must
 * be https, or http on a loopback address (development and tests), without credentials or fragment.
 */
export function providerUrlProblem(value: string): string | undefined {
  const u = URL.parse(value);
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) return 'must be an https:// URL';
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) return 'must be https:// (http:// only on a loopback address: localhost, 127.0.0.1, [::1])';
  if (u.username || u.password || u.hash) return 'must not carry credentials or a fragment';
  return undefined;
}

const providerUrl = (extra?: (u: URL) => string | undefined) =>
  z.string().check((payload) => {
    const message = providerUrlProblem(payload.value) ?? extra?.(new URL(payload.value));
    if (message) payload.issues.push({ code: 'custom', message, input: payload.value });
  });

/** A JWT claim's name: printable, no spaces (a URI is fine: `https://hop.example/workspace`). */
const claimName = z.string().regex(/^[\x21-\x7e]{1,200}$/, 'must be a claim name: 1-200 printable characters without spaces');

/** An OTLP/HTTP endpoint: http(s), no credentials in the URL (they go in OTEL_EXPORTER_OTLP_HEADERS). */
const otlpUrl = z.string().check((payload) => {
  const u = URL.parse(payload.value);
  const message =
    !u || (u.protocol !== 'https:' && u.protocol !== 'http:') ? 'must be an http:// or https:// URL'
    : u.username || u.password ? 'must not carry credentials (use OTEL_EXPORTER_OTLP_HEADERS)'
    : undefined;
  if (message) payload.issues.push({ code: 'custom', message, input: payload.value });
});

/** `key=value,key2=value2`, values percent-encoded (the OTel list format of headers and resource attributes). */
const otlpHeaders = z.string().transform((value, ctx) => {
  const out: Record<string, string> = {};
  for (const part of value.split(',')) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    const key = eq > 0 ? part.slice(0, eq).trim() : '';
    let decoded: string | undefined;
    try {
      decoded = eq > 0 ? decodeURIComponent(part.slice(eq + 1).trim()) : undefined;
    } catch {
      decoded = undefined;
    }
    if (!/^[A-Za-z0-9._-]+$/.test(key) || decoded === undefined) {
      ctx.issues.push({ code: 'custom', message: 'must be key=value pairs separated by commas (values percent-encoded)', input: value });
      return z.NEVER;
    }
    out[key] = decoded;
  }
  return out;
});

/** `host:port` of a second listener (`127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`); port 0 picks a free one. */
const listenAddress = z
  .string()
  .transform((v, ctx) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port > 65535) {
      ctx.issues.push({ code: 'custom', message: 'must be host:port, e.g. 127.0.0.1:9464 ([::1]:9464 for IPv6)', input: v });
      return z.NEVER;
    }
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });

/** Shards a deployment may list: at most one per bucket (src/platform/db/shards.ts), far more than one host needs. */
const SHARD_LIMIT = 64;
/** Read replicas one shard may list. */
const REPLICA_LIMIT = 16;
const SHARD_URL = /^(file:|libsql:\/\/|https?:\/\/)/;

/** The variables every runtime reads, each with its own rules. */
const sharedVariables = {
  PORT: positiveInt(1, 65535).default(8787),
  HOST: z.string().min(1).default('127.0.0.1'),
  HOP_DATABASE_URL: z
    .string()
    .regex(/^(file:|libsql:\/\/|https?:\/\/)/, 'must start with file:, libsql://, http:// or https://')
    // hop opens an embedded database with more than one connection; an in-memory one would be a different,
    // empty database on each.
    .refine((v) => !/^file::memory:|[?&]mode=memory/.test(v), 'must name a file, not an in-memory database')
    .default('file:./data/hop.db'),
  HOP_DATABASE_AUTH_TOKEN: z.string().min(1).optional(),
  HOP_DATABASE_BUSY_TIMEOUT_MS: positiveInt(0, 60_000).default(2000),
  HOP_DATABASE_TIMEOUT_MS: positiveInt(100, 60_000).default(2000),
  // Writes a process sends a remote primary at once (guardedClient's gate; docs/architecture.md).
  HOP_DATABASE_WRITERS: positiveInt(1, 64).default(1),
  HOP_DATABASE_QUEUE_TIMEOUT_MS: positiveInt(0, 60_000).default(10_000),
  HOP_DATABASE_SYNC_URL: z
    .string()
    .regex(/^(libsql:\/\/|https?:\/\/)/, 'must start with libsql://, http:// or https://')
    .optional(),
  HOP_DATABASE_SYNC_INTERVAL_S: positiveInt(1, 86_400).default(5),
  // Shards, comma-separated, each `primary|replica|...`: links, tags, clicks and rollups spread over them
  // (docs/architecture.md, "Shards"). Parsed into one list per shard, its primary first.
  HOP_DATABASE_SHARDS: z
    .string()
    .transform((v, ctx) => {
      const problem = (message: string) => (ctx.issues.push({ code: 'custom', input: v, message }), z.NEVER);
      const entries = v
        .split(',')
        .map((e) => e.split('|').map((u) => u.trim()))
        .filter((e) => e.some((u) => u !== ''));
      if (entries.length === 0 || entries.length > SHARD_LIMIT) return problem(`must list 1 to ${SHARD_LIMIT} shard URLs separated by commas`);
      for (const [primary, ...replicas] of entries) {
        if (!primary || replicas.some((u) => u === '')) {
          return problem('each shard is a primary URL followed by its replicas, separated by | (e.g. http://p1|http://r1), none empty');
        }
        if (!SHARD_URL.test(primary) || /^file::memory:|[?&]mode=memory/.test(primary)) {
          return problem(`"${primary}" is not a shard URL: each must start with file:, libsql://, http:// or https:// and name a file or server`);
        }
        const bad = replicas.find((u) => !/^(libsql:\/\/|https?:\/\/)/.test(u));
        if (bad !== undefined) return problem(`"${bad}" is not a replica URL: a replica is a server (libsql://, http:// or https://)`);
        if (replicas.length && primary.startsWith('file:')) return problem(`"${primary}" is a file: a shard with replicas needs a server as its primary`);
        if (replicas.length > REPLICA_LIMIT) return problem(`lists more than ${REPLICA_LIMIT} replicas for the shard "${primary}"`);
      }
      const all = entries.flat();
      if (new Set(all).size !== all.length) return problem('names the same database twice');
      return entries;
    })
    .optional(),
  // A read sent to a shard's replica: past it the replica is skipped for this read, which goes to the primary.
  HOP_DATABASE_REPLICA_TIMEOUT_MS: positiveInt(10, 60_000).default(500),
  HOP_BASE_URL: baseUrl.optional(),
  HOP_ADMIN_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  HOP_METRICS: z.enum(['on', 'off']).default('on'),
  HOP_METRICS_TOKEN: z
    .string()
    .min(32, 'must be at least 32 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be printable characters without spaces (it is sent as a Bearer token)')
    .optional(),
  HOP_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  HOP_LOG_SAMPLE_RATE: z
    .string()
    .regex(/^(0|1|0?\.\d+|1\.0*)$/, 'must be a number from 0 to 1')
    .transform(Number)
    .default(1),
  HOP_BODY_LIMIT_BYTES: positiveInt(1024, 64 * 1024 * 1024).default(1024 * 1024),
  HOP_GEO_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name')
    .transform((v) => v.toLowerCase())
    .optional(),
  HOP_READY_TIMEOUT_MS: positiveInt(10, 60_000).default(1000),
  HOP_SHUTDOWN_DELAY_MS: positiveInt(0, 120_000).default(3000),
  HOP_CLICKS: z.enum(['on', 'off']).default('on'),
  HOP_CLICK_RETENTION_DAYS: positiveInt(1, 36_500).default(90),
  // Upstash Redis over REST (or any server speaking that protocol): the shared cache tier, rate limits, the queue.
  HOP_REDIS_URL: z.url({ protocol: /^https?$/, error: 'must be the REST URL (https://...), not a redis:// address' }).optional(),
  HOP_REDIS_TOKEN: z.string().min(1).optional(),
  HOP_CACHE: z.enum(['memory', 'redis', 'kv', 'off']).default('memory'),
  HOP_CACHE_MAX_ENTRIES: positiveInt(1, 10_000_000).default(100_000),
  HOP_CACHE_MAX_BYTES: positiveInt(1024, 4 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
  HOP_CACHE_TTL_S: positiveInt(1, 86_400).default(10),
  HOP_CACHE_SHARED_TTL_S: positiveInt(60, 30 * 86_400).default(3600),
  HOP_CACHE_NEGATIVE_TTL_S: positiveInt(1, 3600).default(5),
  HOP_CACHE_TIMEOUT_MS: positiveInt(1, 10_000).default(50),
  HOP_RATE_LIMIT: z.enum(['memory', 'redis', 'cloudflare', 'off']).default('memory'),
  HOP_RATE_LIMIT_API: quota.default({ limit: 600, windowS: 60 }),
  HOP_RATE_LIMIT_KEY_OVERRIDES: keyOverrides.optional(),
  HOP_RATE_LIMIT_UNAUTHENTICATED: quota.default({ limit: 30, windowS: 60 }),
  HOP_RATE_LIMIT_REDIRECT: quota.default({ limit: 1200, windowS: 60 }),
  HOP_RATE_LIMIT_NOT_FOUND: quota.default({ limit: 60, windowS: 60 }),
  HOP_RATE_LIMIT_ON_ERROR: z.enum(['open', 'closed']).default('open'),
  HOP_RATE_LIMIT_TIMEOUT_MS: positiveInt(1, 10_000).default(100),
  HOP_RATE_LIMIT_SALT: z.string().min(16, 'must be at least 16 characters').optional(),
  HOP_CLIENT_IP_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name')
    .transform((v) => v.toLowerCase())
    .optional(),
  // Bearer JWTs from an OpenID Connect provider, beside API keys (docs/architecture.md, "OIDC access tokens").
  // The issuer is compared as written with each token's `iss`, so it is kept exactly as given.
  HOP_OIDC_ISSUER: providerUrl((u) => (u.search ? 'must not carry a query string' : undefined)).optional(),
  HOP_OIDC_AUDIENCE: z.string().min(1).max(500).optional(),
  HOP_OIDC_JWKS_URL: providerUrl().optional(),
  HOP_OIDC_WORKSPACE_CLAIM: claimName.default('hop_workspace'),
  HOP_OIDC_SCOPES_CLAIM: claimName.default('scope'),
  HOP_OIDC_CLOCK_SKEW_S: positiveInt(0, 300).default(30),
  HOP_OIDC_JWKS_COOLDOWN_S: positiveInt(1, 3600).default(30),
  // Traces (OpenTelemetry's standard variables): exported only when an OTLP endpoint is set.
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).optional(),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl.optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/json'], { error: 'must be http/json (the only protocol hop exports)' }).optional(),
  OTEL_EXPORTER_OTLP_HEADERS: otlpHeaders.optional(),
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: otlpHeaders.optional(),
  OTEL_EXPORTER_OTLP_TIMEOUT: positiveInt(1, 60_000).default(10_000),
  OTEL_SERVICE_NAME: z.string().regex(/^[\x21-\x7e]{1,100}$/, 'must be 1-100 printable characters without spaces').default('hop'),
  OTEL_RESOURCE_ATTRIBUTES: otlpHeaders.optional(),
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
    .default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z
    .string()
    .regex(/^(0|1|0?\.\d+|1\.0*)$/, 'must be a number from 0 to 1 (the ratio of traceidratio)')
    .transform(Number)
    .optional(),
  OTEL_BSP_SCHEDULE_DELAY: positiveInt(1, 600_000).default(5000),
};


/** One bad variable, and what is wrong with it (never its value: it may be a secret). */
export interface ConfigProblem {
  variable: string;
  message: string;
}

/** The one format of configuration errors: a header line, then one `  VARIABLE: message` line per problem. */
export function formatConfigProblems(problems: readonly ConfigProblem[]): string {
  return `Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(formatConfigProblems(problems));
    this.problems = problems;
  }
}

/** So many requests per fixed window of `windowS` seconds. */
export interface RateQuota {
  limit: number;
  windowS: number;
}

/**
 * A rule between variables. It runs once every variable it reads is valid (a rule on a value that did not parse
 * would only add noise), so one error names each bad variable and each broken rule at once.
 */
interface Rule<C> {
  reads: readonly (keyof C & string)[];
  check(c: C, problem: (variable: keyof C & string, message: string) => void): void;
}

/** The schema of `variables` with `rules` between them, its output made by `build`; empty strings read as unset. */
function configParser<S extends z.ZodRawShape, T>(
  variables: S,
  rules: readonly Rule<z.output<z.ZodObject<S>>>[],
  build: (c: z.output<z.ZodObject<S>>) => T,
) {
  const schema = z
    .object(variables)
    .check((payload) => {
      const bad = new Set(payload.issues.map((i) => String(i.path?.[0])));
      for (const rule of rules) {
        if (rule.reads.some((name) => bad.has(name))) continue;
        rule.check(payload.value, (variable, message) => {
          payload.issues.push({ code: 'custom', path: [variable], message, input: undefined });
        });
      }
    })
    .transform(build);
  return {
    schema,
    parse(env: Record<string, string | undefined>): T {
      const picked: Record<string, string | undefined> = {};
      for (const key of Object.keys(variables)) picked[key] = env[key] === '' ? undefined : env[key];
      const parsed = schema.safeParse(picked);
      if (parsed.success) return parsed.data;
      throw new ConfigError(parsed.error.issues.map((i) => ({ variable: String(i.path[0]), message: i.message })));
    },
  };
}

type Shared = z.output<z.ZodObject<typeof sharedVariables>>;

const QUOTA_VARIABLES = [
  'HOP_RATE_LIMIT_API',
  'HOP_RATE_LIMIT_UNAUTHENTICATED',
  'HOP_RATE_LIMIT_REDIRECT',
  'HOP_RATE_LIMIT_NOT_FOUND',
] as const;

/** The rules between the shared variables; `queue` is the server's HOP_QUEUE, named so that one message says why. */
const sharedRules = <C extends Shared>(queue?: (c: C) => string): Rule<C>[] => [
  {
    reads: ['HOP_DATABASE_URL', 'HOP_DATABASE_SYNC_URL'],
    check(c, problem) {
      if (c.HOP_DATABASE_SYNC_URL && !c.HOP_DATABASE_URL.startsWith('file:')) {
        problem('HOP_DATABASE_SYNC_URL', 'needs a file: HOP_DATABASE_URL (the local embedded replica of that primary)');
      }
    },
  },
  {
    reads: ['HOP_DATABASE_URL', 'HOP_DATABASE_SHARDS', 'HOP_DATABASE_SYNC_URL'],
    check(c, problem) {
      if (c.HOP_DATABASE_SHARDS?.flat().includes(c.HOP_DATABASE_URL)) {
        problem('HOP_DATABASE_SHARDS', 'must not name HOP_DATABASE_URL, the control database: each shard is a database of its own');
      } else if (c.HOP_DATABASE_SHARDS && c.HOP_DATABASE_SYNC_URL) {
        problem('HOP_DATABASE_SHARDS', 'cannot be combined with HOP_DATABASE_SYNC_URL (an embedded replica) yet');
      }
    },
  },
  {
    reads: ['HOP_REDIS_URL', 'HOP_REDIS_TOKEN', 'HOP_CACHE', 'HOP_RATE_LIMIT'],
    check(c, problem) {
      const why =
        c.HOP_CACHE === 'redis'
          ? 'HOP_CACHE=redis needs it'
          : c.HOP_RATE_LIMIT === 'redis'
            ? 'HOP_RATE_LIMIT=redis needs it'
            : queue?.(c) === 'redis'
              ? 'HOP_QUEUE=redis needs it'
              : c.HOP_REDIS_URL || c.HOP_REDIS_TOKEN
                ? 'HOP_REDIS_URL and HOP_REDIS_TOKEN go together'
                : undefined;
      if (!why) return;
      for (const name of ['HOP_REDIS_URL', 'HOP_REDIS_TOKEN'] as const) if (!c[name]) problem(name, `missing (${why})`);
    },
  },
  {
    reads: ['HOP_RATE_LIMIT', 'HOP_RATE_LIMIT_SALT'],
    check(c, problem) {
      if (c.HOP_RATE_LIMIT === 'redis' && !c.HOP_RATE_LIMIT_SALT) {
        problem('HOP_RATE_LIMIT_SALT', 'missing (HOP_RATE_LIMIT=redis needs it: client addresses are kept in Redis only as HMACs under this secret)');
      }
    },
  },
  {
    reads: ['HOP_RATE_LIMIT', 'HOP_RATE_LIMIT_KEY_OVERRIDES', ...QUOTA_VARIABLES],
    check(c, problem) {
      if (c.HOP_RATE_LIMIT !== 'cloudflare') return;
      // A binding counts in a window of 10 or 60 seconds, and its limit is fixed in wrangler.toml for every key.
      for (const name of QUOTA_VARIABLES) {
        if (c[name].windowS !== 10 && c[name].windowS !== 60) {
          problem(name, 'the window must be 10s or 60s with HOP_RATE_LIMIT=cloudflare (the binding\'s period)');
        }
      }
      if (c.HOP_RATE_LIMIT_KEY_OVERRIDES?.size) {
        problem('HOP_RATE_LIMIT_KEY_OVERRIDES', 'needs HOP_RATE_LIMIT=memory or redis (a ratelimits binding has one limit for every key)');
      }
    },
  },
  {
    reads: ['HOP_OIDC_ISSUER', 'HOP_OIDC_AUDIENCE', 'HOP_OIDC_JWKS_URL'],
    check(c, problem) {
      if (c.HOP_OIDC_ISSUER && !c.HOP_OIDC_AUDIENCE) {
        problem('HOP_OIDC_AUDIENCE', "missing (HOP_OIDC_ISSUER needs it: the audience hop's tokens are issued for)");
      }
      if (!c.HOP_OIDC_ISSUER) {
        for (const name of ['HOP_OIDC_AUDIENCE', 'HOP_OIDC_JWKS_URL'] as const) {
          if (c[name]) problem(name, 'needs HOP_OIDC_ISSUER');
        }
      }
    },
  },
];

function sharedConfig(c: Shared) {
  const baseUrl = c.HOP_BASE_URL ?? `http://localhost:${c.PORT}`;
  return {
    port: c.PORT,
    host: c.HOST,
    databaseUrl: c.HOP_DATABASE_URL,
    databaseAuthToken: c.HOP_DATABASE_AUTH_TOKEN,
    /** How long an embedded database waits for another connection's lock before answering busy (503). */
    databaseBusyTimeoutMs: c.HOP_DATABASE_BUSY_TIMEOUT_MS,
    /** The deadline of every database call: past it the request answers 503 instead of waiting on a hung server. */
    databaseTimeoutMs: c.HOP_DATABASE_TIMEOUT_MS,
    databaseWriters: c.HOP_DATABASE_WRITERS,
    /** How long a call to a remote database may wait for its turn before it answers 503 "busy". */
    databaseQueueTimeoutMs: c.HOP_DATABASE_QUEUE_TIMEOUT_MS,
    /** With a `file:` databaseUrl: the primary it is an embedded replica of (sqld or Turso). */
    databaseSyncUrl: c.HOP_DATABASE_SYNC_URL,
    /** How often an embedded replica pulls the primary's changes, in seconds. */
    databaseSyncIntervalS: c.HOP_DATABASE_SYNC_INTERVAL_S,
    /** Shard URLs (HOP_DATABASE_SHARDS, each shard's primary); undefined: one database holds everything. */
    databaseShards: c.HOP_DATABASE_SHARDS?.map(([primary]) => primary!),
    /** Each shard's read replicas, in the order of databaseShards (empty lists without). */
    databaseShardReplicas: c.HOP_DATABASE_SHARDS?.map(([, ...replicas]) => replicas) ?? [],
    /** The deadline of a read sent to a shard's replica, past which it goes to the primary. */
    databaseReplicaTimeoutMs: c.HOP_DATABASE_REPLICA_TIMEOUT_MS,
    /** Origin of short links on the default domain, e.g. `http://localhost:8787`. */
    baseUrl,
    /** Hostname of the default short-link domain (the base URL's host without port). */
    defaultDomain: new URL(baseUrl).hostname,
    adminToken: c.HOP_ADMIN_TOKEN,
    /**
     * Who may read /metrics on the main port: with `token`, a request carrying `Authorization: Bearer <token>`;
     * without, a client on this machine (a loopback peer, not through a proxy); with `listen` (Node and Bun), nobody:
     * it is served on that separate address instead. Never on a host a workspace registered.
     */
    metrics: {
      /**
       * Whether requests, database calls and the process are measured (`hop_http_*`, `hop_db_*`, `process_*`,
       * `nodejs_*`); off leaves the counters kept anyway (cache, queue, rate limits). The benchmark's baseline.
       */
      enabled: c.HOP_METRICS === 'on',
      token: c.HOP_METRICS_TOKEN,
      listen: undefined as { host: string; port: number } | undefined,
    },
    logLevel: c.HOP_LOG_LEVEL,
    logSampleRate: c.HOP_LOG_SAMPLE_RATE,
    bodyLimitBytes: c.HOP_BODY_LIMIT_BYTES,
    /**
     * The header an edge in front sets to the visitor's country. Unset: no country (any client can send a header,
     * so Node and Bun trust none unless told); a Worker defaults it to `cf-ipcountry`, which Cloudflare sets.
     */
    geoHeader: c.HOP_GEO_HEADER,
    readyTimeoutMs: c.HOP_READY_TIMEOUT_MS,
    /** On SIGTERM, how long /readyz answers 503 while the server still serves, so load balancers move away first. */
    shutdownDelayMs: c.HOP_SHUTDOWN_DELAY_MS,
    /** Whether redirects record click events. */
    clicks: c.HOP_CLICKS === 'on',
    /** How long raw clicks are kept; rollups (statistics) stay. */
    clickRetentionDays: c.HOP_CLICK_RETENTION_DAYS,
    /** Upstash Redis REST URL and token (or any server speaking that protocol); both or neither. */
    redis: c.HOP_REDIS_URL && c.HOP_REDIS_TOKEN ? { url: c.HOP_REDIS_URL, token: c.HOP_REDIS_TOKEN } : undefined,
    cache: {
      /**
       * The link cache's tiers: `memory` (in-process only), `redis` (in-process, then Upstash Redis shared by every
       * process), `kv` (in-process, then Workers KV; Workers only), `off` (every redirect reads the database).
       */
      mode: c.HOP_CACHE,
      /** Bounds of the in-process tier. */
      maxEntries: c.HOP_CACHE_MAX_ENTRIES,
      maxBytes: c.HOP_CACHE_MAX_BYTES,
      /** Lifetime of an in-process entry: how long another process may serve a link changed elsewhere. */
      ttlS: c.HOP_CACHE_TTL_S,
      /** Lifetime of a shared-tier entry (changes delete it; this only bounds what a lost delete leaves behind). */
      sharedTtlS: c.HOP_CACHE_SHARED_TTL_S,
      /** Lifetime of a "no such link" entry (in process and in Redis; never in KV). */
      negativeTtlS: c.HOP_CACHE_NEGATIVE_TTL_S,
      /** Deadline of each shared-tier call; past it the redirect reads the database instead. */
      timeoutMs: c.HOP_CACHE_TIMEOUT_MS,
    },
    rateLimit: {
      /**
       * Where the counters live: `memory` (in process: per process or isolate), `redis` (Upstash Redis, shared by
       * every process; Node and Bun), `cloudflare` (the Workers `ratelimits` bindings, whose limits are set in
       * wrangler.toml), `off`.
       */
      mode: c.HOP_RATE_LIMIT,
      /** Requests per API key (the management API, `/v1`). */
      api: c.HOP_RATE_LIMIT_API,
      /** Quotas of particular API keys (by key id) instead of `api`. */
      keyOverrides: c.HOP_RATE_LIMIT_KEY_OVERRIDES ?? (new Map() as ReadonlyMap<string, RateQuota>),
      /** Failed authentications per client address on `/v1`; past it that address is refused before its key is checked. */
      unauthenticated: c.HOP_RATE_LIMIT_UNAUTHENTICATED,
      /** Redirect requests per client address. */
      redirect: c.HOP_RATE_LIMIT_REDIRECT,
      /** Unknown-slug answers per client address; past it every redirect request from that address is refused. */
      notFound: c.HOP_RATE_LIMIT_NOT_FOUND,
      /** With the store failing or past its deadline: allow the request unchecked (`open`) or refuse it with 503 (`closed`). */
      onError: c.HOP_RATE_LIMIT_ON_ERROR,
      /** Deadline of each call to a remote store (Redis, the binding). */
      timeoutMs: c.HOP_RATE_LIMIT_TIMEOUT_MS,
      /** Secret of the HMAC under which client addresses are stored in Redis (they never are in the clear). */
      salt: c.HOP_RATE_LIMIT_SALT,
    },
    /**
     * The header a trusted load balancer sets to the client's address (its right-most entry counts); unset: the
     * address of the connection's peer (Workers: `cf-connecting-ip`). Never read unless configured.
     */
    clientIpHeader: c.HOP_CLIENT_IP_HEADER,
    /** Bearer JWTs from this OpenID Connect provider are accepted beside API keys; undefined: API keys only. */
    oidc:
      c.HOP_OIDC_ISSUER && c.HOP_OIDC_AUDIENCE
        ? {
            /** Compared as written with each token's `iss`; its discovery document is `<issuer>/.well-known/openid-configuration`. */
            issuer: c.HOP_OIDC_ISSUER,
            /** What each token's `aud` must contain. */
            audience: c.HOP_OIDC_AUDIENCE,
            /** The provider's keys; undefined: the discovery document's `jwks_uri`. */
            jwksUrl: c.HOP_OIDC_JWKS_URL,
            /** The claim holding the workspace id. */
            workspaceClaim: c.HOP_OIDC_WORKSPACE_CLAIM,
            /** The claim holding the hop scopes (space separated, or an array); other scopes in it are ignored. */
            scopesClaim: c.HOP_OIDC_SCOPES_CLAIM,
            /** Leeway on `exp` and `nbf` for clocks that disagree. */
            clockSkewS: c.HOP_OIDC_CLOCK_SKEW_S,
            /** Least time between two fetches of the provider's documents (an unknown `kid`, a failed fetch). */
            jwksCooldownS: c.HOP_OIDC_JWKS_COOLDOWN_S,
          }
        : undefined,
    /** Traces over OTLP/HTTP JSON; undefined (the default): no tracer, nothing traced. */
    tracing: tracingConfig(c),
  };
}

function tracingConfig(c: Shared) {
  const endpoint =
    c.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (c.OTEL_EXPORTER_OTLP_ENDPOINT && `${c.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
  if (!endpoint || c.OTEL_SDK_DISABLED === 'true' || c.OTEL_TRACES_EXPORTER === 'none') return undefined;
  return {
    /** Where spans are POSTed (OTLP/HTTP, JSON encoding). */
    endpoint,
    headers: { ...c.OTEL_EXPORTER_OTLP_HEADERS, ...c.OTEL_EXPORTER_OTLP_TRACES_HEADERS },
    timeoutMs: c.OTEL_EXPORTER_OTLP_TIMEOUT,
    serviceName: c.OTEL_SERVICE_NAME,
    resource: c.OTEL_RESOURCE_ATTRIBUTES ?? {},
    sampler: c.OTEL_TRACES_SAMPLER,
    /** The ratio of the traceidratio samplers (default 1). */
    ratio: c.OTEL_TRACES_SAMPLER_ARG ?? 1,
    /** Longest wait between two exports on Node and Bun. */
    delayMs: c.OTEL_BSP_SCHEDULE_DELAY,
  };
}

const shared = configParser(sharedVariables, sharedRules(), sharedConfig);

/** The configuration every runtime reads (environment variables, or a Worker's bindings). */
export const configSchema = shared.schema;
export type Env = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type CacheConfig = Config['cache'];
export type RateLimitConfig = Config['rateLimit'];
export type OidcConfig = NonNullable<Config['oidc']>;
export type TracingConfig = NonNullable<Config['tracing']>;

/** Parses environment variables into a Config; throws ConfigError naming every bad variable. */
export const loadConfig = (env: Record<string, string | undefined>): Config => shared.parse(env);

/** How a Node or Bun server listens: TLS, timeouts and connection caps (src/runtimes/listen.ts applies them). */
const listenVariables = {
  HOP_TLS_CERT: z.string().min(1).optional(),
  HOP_TLS_KEY: z.string().min(1).optional(),
  HOP_HEADERS_TIMEOUT_MS: positiveInt(100, 600_000).default(10_000),
  HOP_REQUEST_TIMEOUT_MS: positiveInt(100, 3_600_000).default(30_000),
  HOP_KEEP_ALIVE_TIMEOUT_MS: positiveInt(100, 600_000).default(65_000),
  HOP_IDLE_TIMEOUT_MS: positiveInt(100, 3_600_000).default(120_000),
  HOP_MAX_CONNECTIONS: positiveInt(1, 1_000_000).default(10_000),
  HOP_MAX_CONNECTIONS_PER_ADDRESS: positiveInt(0, 1_000_000).default(1000),
};
type Listen = z.output<z.ZodObject<typeof listenVariables>>;

const listenRules: Rule<Listen>[] = [
  {
    reads: ['HOP_TLS_CERT', 'HOP_TLS_KEY'],
    check(c, problem) {
      if (c.HOP_TLS_CERT && !c.HOP_TLS_KEY) problem('HOP_TLS_KEY', 'missing (HOP_TLS_CERT and HOP_TLS_KEY go together)');
      if (c.HOP_TLS_KEY && !c.HOP_TLS_CERT) problem('HOP_TLS_CERT', 'missing (HOP_TLS_CERT and HOP_TLS_KEY go together)');
    },
  },
  {
    reads: ['HOP_HEADERS_TIMEOUT_MS', 'HOP_REQUEST_TIMEOUT_MS'],
    check(c, problem) {
      if (c.HOP_REQUEST_TIMEOUT_MS < c.HOP_HEADERS_TIMEOUT_MS) {
        problem('HOP_REQUEST_TIMEOUT_MS', 'must be at least HOP_HEADERS_TIMEOUT_MS (the whole request includes its head)');
      }
    },
  },
];

function listenSettings(c: Listen) {
  return {
    /** PEM files of the certificate chain and its key: the server speaks HTTPS (and HTTP/2 on Node) itself. */
    tls: c.HOP_TLS_CERT && c.HOP_TLS_KEY ? { certFile: c.HOP_TLS_CERT, keyFile: c.HOP_TLS_KEY } : undefined,
    /** Longest wait for a request's head, from the connection's start or the previous answer (slow-header clients). */
    headersTimeoutMs: c.HOP_HEADERS_TIMEOUT_MS,
    /** Longest wait for a whole request, body included (slow-body clients). */
    requestTimeoutMs: c.HOP_REQUEST_TIMEOUT_MS,
    /** How long an idle keep-alive connection is kept between requests. */
    keepAliveTimeoutMs: c.HOP_KEEP_ALIVE_TIMEOUT_MS,
    /** A connection with no traffic either way for this long is closed (a client that stops reading its answer). */
    idleTimeoutMs: c.HOP_IDLE_TIMEOUT_MS,
    /** Open connections in total; past it new ones are closed at once. */
    maxConnections: c.HOP_MAX_CONNECTIONS,
    /** Open connections per client address (an IPv6 client by its /64); 0: no cap. */
    maxConnectionsPerAddress: c.HOP_MAX_CONNECTIONS_PER_ADDRESS,
  };
}

/**
 * Settings only Node and Bun read: the click queue (a Worker has its Queues binding instead). Built on demand and
 * kept out of configSchema, so the Worker's bundle does not carry them.
 */
function serverParser() {
  const key = z.string().regex(/^[\x21-\x7e]{1,200}$/, 'must be 1-200 printable characters without spaces');
  const variables = {
    ...sharedVariables,
    HOP_ROLE: z.enum(['redirect', 'api', 'all']).default('all'),
    HOP_QUEUE: z.enum(['memory', 'redis']).default('memory'),
    HOP_CLICK_CONSUMER: z.enum(['on', 'off']).default('on'),
    HOP_QUEUE_STREAM: key.default('hop:clicks'),
    HOP_QUEUE_GROUP: key.default('hop-clicks'),
    HOP_QUEUE_DEAD_LETTER: key.default('hop:clicks:dead'),
    HOP_QUEUE_MAX_DELIVERIES: positiveInt(1, 1000).default(5),
    HOP_QUEUE_CLAIM_IDLE_MS: positiveInt(1000, 86_400_000).default(60_000),
    HOP_QUEUE_MAX_BUFFERED: positiveInt(100, 10_000_000).default(20_000),
    ...listenVariables,
    HOP_WORKERS: z
      .string()
      .regex(/^(auto|\d+)$/, 'must be a whole number from 1 to 256, or auto (one per available core)')
      .transform((v) => (v === 'auto' ? ('auto' as const) : Number(v)))
      .pipe(z.union([z.literal('auto'), z.number().min(1, 'must be at least 1').max(256, 'must be at most 256')]))
      .default(1),
    HOP_METRICS_ADDR: listenAddress.optional(),
  };
  type Server = z.output<z.ZodObject<typeof variables>>;
  const rules: Rule<Server>[] = [
    // HOP_QUEUE=redis needs the Redis URL and token too: the shared rule names it, once HOP_QUEUE is valid.
    ...sharedRules<Server>((c) => c.HOP_QUEUE).map((rule) =>
      rule.reads.includes('HOP_REDIS_URL') ? { ...rule, reads: [...rule.reads, 'HOP_QUEUE' as const] } : rule,
    ),
    ...listenRules,
    {
      reads: ['HOP_CLICK_CONSUMER', 'HOP_QUEUE'],
      check(c, problem) {
        if (c.HOP_CLICK_CONSUMER === 'off' && c.HOP_QUEUE !== 'redis') {
          problem('HOP_CLICK_CONSUMER', 'off needs HOP_QUEUE=redis (the in-process queue has no other consumer)');
        }
      },
    },
    {
      reads: ['HOP_QUEUE_DEAD_LETTER', 'HOP_QUEUE_STREAM'],
      check(c, problem) {
        if (c.HOP_QUEUE_DEAD_LETTER === c.HOP_QUEUE_STREAM) problem('HOP_QUEUE_DEAD_LETTER', 'must differ from HOP_QUEUE_STREAM');
      },
    },
    {
      reads: ['HOP_METRICS_ADDR', 'PORT'],
      check(c, problem) {
        if (c.HOP_METRICS_ADDR && c.HOP_METRICS_ADDR.port !== 0 && c.HOP_METRICS_ADDR.port === c.PORT) {
          problem('HOP_METRICS_ADDR', `must use another port than PORT (${c.PORT}): it is a second listener`);
        }
      },
    },
    {
      reads: ['HOP_RATE_LIMIT'],
      check(c, problem) {
        if (c.HOP_RATE_LIMIT === 'cloudflare') {
          problem('HOP_RATE_LIMIT', 'cloudflare is a Workers binding; use memory or redis on Node and Bun');
        }
      },
    },
  ];
  return configParser(variables, rules, (c) => ({
    ...sharedConfig(c),
    /**
     * What this process serves: `redirect` (short links, probes, metrics), `api` (the management API, its documents,
     * probes, metrics; no click pipeline) or `all` (both).
     */
    role: c.HOP_ROLE,
    // Without HOP_BASE_URL, links point at the server itself: over https when it serves TLS.
    ...(c.HOP_TLS_CERT && !c.HOP_BASE_URL ? { baseUrl: `https://localhost:${c.PORT}` } : {}),
    listen: listenSettings(c),
    metrics: { enabled: c.HOP_METRICS === 'on', token: c.HOP_METRICS_TOKEN, listen: c.HOP_METRICS_ADDR },
    /** The click queue: in-process (`memory`) or Redis Streams (`redis`, over the Upstash REST protocol). */
    queue: c.HOP_QUEUE,
    /**
     * Click events a process holds at most, not yet stored (in-process queue) or sent (Redis): past it, redirects
     * are refused with 503 rather than their clicks lost. Also what a SIGKILL can lose at most.
     */
    queueMaxBuffered: c.HOP_QUEUE_MAX_BUFFERED,
    /** Server processes on this host under one supervisor (`auto`: one per available core); 1: no supervisor. */
    workers: c.HOP_WORKERS,
    /** With the Redis queue: whether a server process also consumes it (`hop consume` runs a consumer alone). */
    clickConsumer: c.HOP_CLICK_CONSUMER === 'on',
    /** The Redis Streams queue: stream, consumer group, dead-letter stream, and when an entry is given up or taken over. */
    clickStream: {
      key: c.HOP_QUEUE_STREAM,
      group: c.HOP_QUEUE_GROUP,
      deadLetterKey: c.HOP_QUEUE_DEAD_LETTER,
      maxDeliveries: c.HOP_QUEUE_MAX_DELIVERIES,
      claimIdleMs: c.HOP_QUEUE_CLAIM_IDLE_MS,
    },
  }));
}

export type ServerConfig = z.output<ReturnType<typeof serverParser>['schema']>;

/** loadConfig plus the Node and Bun settings; one ConfigError naming every bad variable of both. */
export const loadServerConfig = (env: Record<string, string | undefined>): ServerConfig => serverParser().parse(env);
