// loadConfig: defaults, one ConfigError naming each bad variable, and empty strings read as unset.
import { describe, expect, it } from 'vitest';
import { ConfigError, formatConfigProblems, loadConfig, loadServerConfig } from '../../src/config.ts';
import { workerConfig } from '../../src/runtimes/worker-bindings.ts';

/** The ConfigError thrown for `env`; fails the test when none is thrown. */
function configError(env: Record<string, string | undefined>, load: (env: Record<string, string | undefined>) => unknown = loadConfig): ConfigError {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe('loadConfig', () => {
  it('has working defaults for an empty environment', () => {
    expect(loadConfig({})).toEqual({
      port: 8787,
      host: '127.0.0.1',
      databaseUrl: 'file:./data/hop.db',
      databaseAuthToken: undefined,
      databaseBusyTimeoutMs: 2000,
      databaseTimeoutMs: 2000,
      databaseWriters: 1,
      databaseQueueTimeoutMs: 10_000,
      databaseSyncUrl: undefined,
      databaseSyncIntervalS: 5,
      databaseShardReplicas: [],
      databaseReplicaTimeoutMs: 500,
      baseUrl: 'http://localhost:8787',
      defaultDomain: 'localhost',
      adminToken: undefined,
      metrics: { enabled: true, token: undefined, listen: undefined },
      logLevel: 'info',
      logSampleRate: 1,
      bodyLimitBytes: 1024 * 1024,
      geoHeader: undefined,
      readyTimeoutMs: 1000,
      shutdownDelayMs: 3000,
      clicks: true,
      clickRetentionDays: 90,
      redis: undefined,
      cache: { mode: 'memory', maxEntries: 100_000, maxBytes: 64 * 1024 * 1024, ttlS: 10, sharedTtlS: 3600, negativeTtlS: 5, timeoutMs: 50 },
      rateLimit: {
        mode: 'memory',
        api: { limit: 600, windowS: 60 },
        keyOverrides: new Map(),
        unauthenticated: { limit: 30, windowS: 60 },
        redirect: { limit: 1200, windowS: 60 },
        notFound: { limit: 60, windowS: 60 },
        onError: 'open',
        timeoutMs: 100,
        salt: undefined,
      },
      clientIpHeader: undefined,
      oidc: undefined,
    });
  });

  it('derives the default base URL from PORT', () => {
    const config = loadConfig({ PORT: '3000' });
    expect(config.port).toBe(3000);
    expect(config.baseUrl).toBe('http://localhost:3000');
    expect(config.defaultDomain).toBe('localhost');
  });

  it('takes HOP_BASE_URL as an origin and its hostname (without port) as the default domain', () => {
    expect(loadConfig({ HOP_BASE_URL: 'https://Hop.Example.com/' })).toMatchObject({
      baseUrl: 'https://hop.example.com',
      defaultDomain: 'hop.example.com',
    });
    expect(loadConfig({ HOP_BASE_URL: 'http://sho.rt:8080' })).toMatchObject({
      baseUrl: 'http://sho.rt:8080',
      defaultDomain: 'sho.rt',
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '0.0.0.0',
      HOP_DATABASE_URL: 'libsql://db.example.turso.io',
      HOP_DATABASE_AUTH_TOKEN: 'token',
      HOP_ADMIN_TOKEN: 'a'.repeat(32),
      HOP_LOG_LEVEL: 'debug',
      HOP_LOG_SAMPLE_RATE: '0.25',
      HOP_BODY_LIMIT_BYTES: '2048',
      HOP_GEO_HEADER: 'X-Country',
      HOP_READY_TIMEOUT_MS: '250',
      HOP_DATABASE_TIMEOUT_MS: '1500',
    });
    expect(config).toMatchObject({
      databaseTimeoutMs: 1500,
      port: 9000,
      host: '0.0.0.0',
      databaseUrl: 'libsql://db.example.turso.io',
      databaseAuthToken: 'token',
      adminToken: 'a'.repeat(32),
      logLevel: 'debug',
      logSampleRate: 0.25,
      bodyLimitBytes: 2048,
      geoHeader: 'x-country',
      readyTimeoutMs: 250,
    });
  });

  it.each(['file:/tmp/hop.db', 'libsql://x.turso.io', 'http://127.0.0.1:8080', 'https://db.example.com'])(
    'accepts the database URL %s',
    (url) => {
      expect(loadConfig({ HOP_DATABASE_URL: url }).databaseUrl).toBe(url);
    },
  );

  it('reads an embedded replica: a file plus the primary it syncs from', () => {
    expect(
      loadConfig({
        HOP_DATABASE_URL: 'file:./replica.db',
        HOP_DATABASE_SYNC_URL: 'http://127.0.0.1:8080',
        HOP_DATABASE_SYNC_INTERVAL_S: '2',
      }),
    ).toMatchObject({ databaseUrl: 'file:./replica.db', databaseSyncUrl: 'http://127.0.0.1:8080', databaseSyncIntervalS: 2 });
  });

  it('reads HOP_DATABASE_SHARDS as a list of shard URLs, and leaves it undefined when unset', () => {
    expect(loadConfig({}).databaseShards).toBeUndefined();
    expect(
      loadConfig({ HOP_DATABASE_URL: 'http://127.0.0.1:8080', HOP_DATABASE_SHARDS: ' file:./s0.db, http://127.0.0.1:8081 ,libsql://s2.turso.io' }),
    ).toMatchObject({ databaseShards: ['file:./s0.db', 'http://127.0.0.1:8081', 'libsql://s2.turso.io'], databaseShardReplicas: [[], [], []] });
  });

  it('reads each shard of HOP_DATABASE_SHARDS as a primary and its replicas separated by |', () => {
    const config = loadConfig({
      HOP_DATABASE_URL: 'http://127.0.0.1:8080',
      HOP_DATABASE_SHARDS: 'http://127.0.0.1:8081 | http://127.0.0.1:9081|https://r2.example ,libsql://s2.turso.io,file:./s3.db',
      HOP_DATABASE_REPLICA_TIMEOUT_MS: '250',
    });
    expect(config).toMatchObject({
      databaseShards: ['http://127.0.0.1:8081', 'libsql://s2.turso.io', 'file:./s3.db'],
      databaseShardReplicas: [['http://127.0.0.1:9081', 'https://r2.example'], [], []],
      databaseReplicaTimeoutMs: 250,
    });
    expect(loadConfig({}).databaseReplicaTimeoutMs).toBe(500);
    expect(loadConfig({}).databaseShardReplicas).toEqual([]);
  });

  it.each([
    ['postgres://x', /"postgres:\/\/x" is not a shard URL/],
    ['file:./a.db,./b.db', /"\.\/b\.db" is not a shard URL/],
    ['file::memory:', /is not a shard URL/],
    ['file:./a.db,file:./a.db', /names the same database twice/],
    ['http://p1|http://r1,http://p2|http://r1', /names the same database twice/],
    ['http://p1|http://p1', /names the same database twice/],
    ['http://p1|', /a primary URL followed by its replicas, separated by \| .* none empty/],
    ['|http://r1', /a primary URL followed by its replicas/],
    ['http://p1||http://r2', /none empty/],
    ['http://p1|file:./r.db', /"file:\.\/r\.db" is not a replica URL: a replica is a server/],
    ['http://p1|ws://r1', /"ws:\/\/r1" is not a replica URL/],
    ['file:./s.db|http://r1', /"file:\.\/s\.db" is a file: a shard with replicas needs a server as its primary/],
    [`http://p1|${Array.from({ length: 17 }, (_, i) => `http://r${i}`).join('|')}`, /more than 16 replicas for the shard "http:\/\/p1"/],
    [',', /must list 1 to 64 shard URLs/],
    [Array.from({ length: 65 }, (_, i) => `file:./s${i}.db`).join(','), /must list 1 to 64 shard URLs/],
  ])('refuses HOP_DATABASE_SHARDS=%s with a clear message', (value, message) => {
    expect(configError({ HOP_DATABASE_SHARDS: value }).message).toMatch(message);
  });

  it('refuses the control database among the shards or their replicas, and shards with an embedded replica', () => {
    expect(configError({ HOP_DATABASE_URL: 'file:./c.db', HOP_DATABASE_SHARDS: 'file:./s.db,file:./c.db' }).message).toMatch(
      /^ {2}HOP_DATABASE_SHARDS: must not name HOP_DATABASE_URL/m,
    );
    expect(configError({ HOP_DATABASE_URL: 'http://c:1', HOP_DATABASE_SHARDS: 'http://s:1|http://c:1' }).message).toMatch(
      /^ {2}HOP_DATABASE_SHARDS: must not name HOP_DATABASE_URL/m,
    );
    for (const bad of ['5', '0', 'x', '60001']) {
      expect(configError({ HOP_DATABASE_REPLICA_TIMEOUT_MS: bad }).message).toMatch(/HOP_DATABASE_REPLICA_TIMEOUT_MS/);
    }
    expect(
      configError({ HOP_DATABASE_URL: 'file:./c.db', HOP_DATABASE_SYNC_URL: 'http://127.0.0.1:8080', HOP_DATABASE_SHARDS: 'file:./s.db' }).message,
    ).toMatch(/HOP_DATABASE_SHARDS: cannot be combined with HOP_DATABASE_SYNC_URL/);
  });

  it('refuses a sync URL for a database that is not a local file', () => {
    const err = configError({ HOP_DATABASE_URL: 'http://127.0.0.1:8080', HOP_DATABASE_SYNC_URL: 'http://127.0.0.1:8081' });
    expect(err.message).toMatch(/^ {2}HOP_DATABASE_SYNC_URL: needs a file: HOP_DATABASE_URL/m);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '0'],
    ['PORT', '80.5'],
    ['HOP_DATABASE_URL', 'postgres://x'],
    ['HOP_DATABASE_URL', './data/hop.db'],
    ['HOP_ADMIN_TOKEN', 'short'],
    ['HOP_ADMIN_TOKEN', 'a'.repeat(31)],
    ['HOP_LOG_LEVEL', 'loud'],
    ['HOP_LOG_SAMPLE_RATE', '2'],
    ['HOP_LOG_SAMPLE_RATE', '-0.1'],
    ['HOP_LOG_SAMPLE_RATE', 'half'],
    ['HOP_BASE_URL', 'https://hop.example.com/app'],
    ['HOP_BASE_URL', 'https://hop.example.com/?a=1'],
    ['HOP_BASE_URL', 'https://user:pw@hop.example.com'],
    ['HOP_BASE_URL', 'ftp://hop.example.com'],
    ['HOP_BASE_URL', 'hop.example.com'],
    ['HOP_BODY_LIMIT_BYTES', '10'],
    ['HOP_GEO_HEADER', 'bad header'],
    ['HOP_READY_TIMEOUT_MS', '5'],
    ['HOP_DATABASE_TIMEOUT_MS', '50'],
    ['HOP_DATABASE_TIMEOUT_MS', '2s'],
    ['HOP_DATABASE_SYNC_URL', 'file:./primary.db'],
    ['HOP_DATABASE_SYNC_INTERVAL_S', '0'],
    ['HOP_CLICKS', 'yes'],
    ['HOP_CLICK_RETENTION_DAYS', '0'],
    ['HOP_QUEUE', 'kafka'],
    ['HOP_QUEUE_STREAM', 'has space'],
    ['HOP_QUEUE_GROUP', ''.padEnd(201, 'g')],
    ['HOP_QUEUE_MAX_DELIVERIES', '0'],
    ['HOP_QUEUE_CLAIM_IDLE_MS', '999'],
    ['HOP_CLICK_CONSUMER', 'no'],
    ['HOP_RATE_LIMIT', 'nginx'],
    ['HOP_RATE_LIMIT', 'cloudflare'],
    ['HOP_RATE_LIMIT_API', '600'],
    ['HOP_RATE_LIMIT_API', '600/60'],
    ['HOP_RATE_LIMIT_API', '0/60s'],
    ['HOP_RATE_LIMIT_API', '600/0s'],
    ['HOP_RATE_LIMIT_API', '1e3/60s'],
    ['HOP_RATE_LIMIT_API', '-1/60s'],
    ['HOP_RATE_LIMIT_API', '600/60S'],
    ['HOP_RATE_LIMIT_API', '600 per minute'],
    ['HOP_RATE_LIMIT_UNAUTHENTICATED', '1/25h'],
    ['HOP_RATE_LIMIT_REDIRECT', '1/86401s'],
    ['HOP_RATE_LIMIT_NOT_FOUND', '1000000001/60s'],
    ['HOP_RATE_LIMIT_KEY_OVERRIDES', 'key_0123=5/60s'],
    ['HOP_RATE_LIMIT_ON_ERROR', 'ignore'],
    ['HOP_RATE_LIMIT_TIMEOUT_MS', '0'],
    ['HOP_RATE_LIMIT_TIMEOUT_MS', '10001'],
    ['HOP_RATE_LIMIT_SALT', 'short'],
    ['HOP_CLIENT_IP_HEADER', 'x forwarded for'],
    ['HOP_CLIENT_IP_HEADER', 'x-forwarded-for:2'],
    ['HOP_METRICS', 'yes'],
    ['HOP_METRICS_TOKEN', 'm'.repeat(31)],
    ['HOP_METRICS_TOKEN', `${'m'.repeat(32)} x`],
    ['HOP_METRICS_ADDR', '9464'],
    ['HOP_METRICS_ADDR', '127.0.0.1'],
    ['HOP_METRICS_ADDR', '127.0.0.1:70000'],
    ['HOP_METRICS_ADDR', 'http://127.0.0.1:9464'],
    ['HOP_METRICS_ADDR', '::1:9464'],
    ['HOP_METRICS_ADDR', '127.0.0.1:8787'],
  ])('stops with a ConfigError naming %s=%j', (name, value) => {
    const err = configError({ [name]: value }, loadServerConfig);
    expect(err.name).toBe('ConfigError');
    expect(err.message).toMatch(new RegExp(`^  ${name}: `, 'm'));
    const named = [...err.message.matchAll(/^ {2}([A-Z_]+):/gm)].map((m) => m[1]);
    expect(new Set(named)).toEqual(new Set([name]));
  });

  it('has the in-process queue by default on Node and Bun, and the Worker does not read the queue settings', () => {
    expect(loadServerConfig({})).toEqual({
      ...loadConfig({}),
      role: 'all',
      queue: 'memory',
      queueMaxBuffered: 20_000,
      redis: undefined,
      clickConsumer: true,
      clickStream: { key: 'hop:clicks', group: 'hop-clicks', deadLetterKey: 'hop:clicks:dead', maxDeliveries: 5, claimIdleMs: 60_000 },
      listen: {
        tls: undefined,
        headersTimeoutMs: 10_000,
        requestTimeoutMs: 30_000,
        keepAliveTimeoutMs: 65_000,
        idleTimeoutMs: 120_000,
        maxConnections: 10_000,
        maxConnectionsPerAddress: 1000,
      },
      metrics: { enabled: true, token: undefined, listen: undefined },
      workers: 1,
    });
    expect(loadConfig({ HOP_QUEUE: 'kafka' })).not.toHaveProperty('queue');
  });

  it('serves TLS with a certificate and its key, both or neither, and links over https by default then', () => {
    const tls = loadServerConfig({ HOP_TLS_CERT: '/etc/hop/cert.pem', HOP_TLS_KEY: '/etc/hop/key.pem', PORT: '8443' });
    expect(tls.listen.tls).toEqual({ certFile: '/etc/hop/cert.pem', keyFile: '/etc/hop/key.pem' });
    expect(tls.baseUrl).toBe('https://localhost:8443');
    const behind = loadServerConfig({ HOP_TLS_CERT: 'c.pem', HOP_TLS_KEY: 'k.pem', HOP_BASE_URL: 'https://hop.example' });
    expect(behind.baseUrl).toBe('https://hop.example');
    expect(loadServerConfig({ HOP_BASE_URL: 'https://hop.example:8443' }).baseUrl).toBe('https://hop.example:8443');
    expect(configError({ HOP_TLS_CERT: 'c.pem' }, loadServerConfig).problems).toEqual([
      { variable: 'HOP_TLS_KEY', message: 'missing (HOP_TLS_CERT and HOP_TLS_KEY go together)' },
    ]);
    expect(configError({ HOP_TLS_KEY: 'k.pem' }, loadServerConfig).problems.map((p) => p.variable)).toEqual(['HOP_TLS_CERT']);
  });

  it('reads the timeouts and connection caps, refusing a request timeout shorter than the head\'s', () => {
    const c = loadServerConfig({
      HOP_HEADERS_TIMEOUT_MS: '2000',
      HOP_REQUEST_TIMEOUT_MS: '5000',
      HOP_KEEP_ALIVE_TIMEOUT_MS: '3000',
      HOP_IDLE_TIMEOUT_MS: '9000',
      HOP_MAX_CONNECTIONS: '500',
      HOP_MAX_CONNECTIONS_PER_ADDRESS: '0',
    }).listen;
    expect(c).toMatchObject({ headersTimeoutMs: 2000, requestTimeoutMs: 5000, keepAliveTimeoutMs: 3000, idleTimeoutMs: 9000 });
    expect(c).toMatchObject({ maxConnections: 500, maxConnectionsPerAddress: 0 });
    const err = configError({ HOP_HEADERS_TIMEOUT_MS: '20000', HOP_REQUEST_TIMEOUT_MS: '10000' }, loadServerConfig);
    expect(err.problems.map((p) => p.variable)).toEqual(['HOP_REQUEST_TIMEOUT_MS']);
    const bad = configError({ HOP_HEADERS_TIMEOUT_MS: '10s', HOP_MAX_CONNECTIONS: '0', HOP_KEEP_ALIVE_TIMEOUT_MS: '-1' }, loadServerConfig);
    expect(bad.problems.map((p) => p.variable)).toEqual(['HOP_HEADERS_TIMEOUT_MS', 'HOP_KEEP_ALIVE_TIMEOUT_MS', 'HOP_MAX_CONNECTIONS']);
  });

  it('reads HOP_WORKERS as a count from 1 to 256 or auto, naming it otherwise', () => {
    expect(loadServerConfig({ HOP_WORKERS: '4' }).workers).toBe(4);
    expect(loadServerConfig({ HOP_WORKERS: 'auto' }).workers).toBe('auto');
    expect(() => loadServerConfig({ HOP_WORKERS: '0' })).toThrow(/HOP_WORKERS: must be at least 1/);
    expect(() => loadServerConfig({ HOP_WORKERS: '257' })).toThrow(/HOP_WORKERS: must be at most 256/);
    expect(() => loadServerConfig({ HOP_WORKERS: 'all' })).toThrow(/HOP_WORKERS: must be a whole number from 1 to 256, or auto/);
    expect(() => loadServerConfig({ HOP_WORKERS: '-1' })).toThrow(/HOP_WORKERS/);
    expect(loadConfig({ HOP_WORKERS: 'all' })).not.toHaveProperty('workers');
  });

  it('reads who may read the metrics: a token everywhere, a second listener on Node and Bun', () => {
    expect(loadConfig({}).metrics).toEqual({ enabled: true, token: undefined, listen: undefined });
    expect(loadConfig({ HOP_METRICS: 'off' }).metrics.enabled).toBe(false);
    expect(loadConfig({ HOP_METRICS_TOKEN: 'm'.repeat(32) }).metrics).toEqual({ enabled: true, token: 'm'.repeat(32), listen: undefined });
    expect(loadServerConfig({ HOP_METRICS_ADDR: '127.0.0.1:9464' }).metrics.listen).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadServerConfig({ HOP_METRICS_ADDR: '[::1]:9464' }).metrics.listen).toEqual({ host: '::1', port: 9464 });
    expect(loadServerConfig({ HOP_METRICS_ADDR: '0.0.0.0:0' }).metrics.listen).toEqual({ host: '0.0.0.0', port: 0 });
    expect(() => loadServerConfig({ HOP_METRICS_ADDR: '127.0.0.1:9000', PORT: '9000' })).toThrow(
      /HOP_METRICS_ADDR: must use another port than PORT \(9000\)/,
    );
    expect(() => loadServerConfig({ HOP_METRICS_ADDR: 'localhost' })).toThrow(/HOP_METRICS_ADDR: must be host:port, e.g. 127.0.0.1:9464/);
    // The Worker has no second listener: it does not read HOP_METRICS_ADDR.
    expect(loadConfig({ HOP_METRICS_ADDR: 'nonsense' }).metrics.listen).toBeUndefined();
  });

  it('bounds the click buffer by HOP_QUEUE_MAX_BUFFERED, naming it when it is not a count', () => {
    expect(loadServerConfig({ HOP_QUEUE_MAX_BUFFERED: '2000' }).queueMaxBuffered).toBe(2000);
    expect(() => loadServerConfig({ HOP_QUEUE_MAX_BUFFERED: '10' })).toThrow(/HOP_QUEUE_MAX_BUFFERED/);
    expect(() => loadServerConfig({ HOP_QUEUE_MAX_BUFFERED: 'lots' })).toThrow(/HOP_QUEUE_MAX_BUFFERED/);
  });

  it('reads the Redis Streams queue settings', () => {
    const config = loadServerConfig({
      HOP_QUEUE: 'redis',
      HOP_REDIS_URL: 'https://eu1-example.upstash.io',
      HOP_REDIS_TOKEN: 'secret-token',
      HOP_CLICK_CONSUMER: 'off',
      HOP_QUEUE_STREAM: 'q:clicks',
      HOP_QUEUE_GROUP: 'ingest',
      HOP_QUEUE_DEAD_LETTER: 'q:clicks:dlq',
      HOP_QUEUE_MAX_DELIVERIES: '3',
      HOP_QUEUE_CLAIM_IDLE_MS: '5000',
    });
    expect(config).toMatchObject({
      queue: 'redis',
      redis: { url: 'https://eu1-example.upstash.io', token: 'secret-token' },
      clickConsumer: false,
      clickStream: { key: 'q:clicks', group: 'ingest', deadLetterKey: 'q:clicks:dlq', maxDeliveries: 3, claimIdleMs: 5000 },
    });
  });

  it('needs the Redis URL and token for HOP_QUEUE=redis, naming each missing one', () => {
    const both = configError({ HOP_QUEUE: 'redis' }, loadServerConfig);
    expect(both.message).toMatch(/^ {2}HOP_REDIS_URL: missing \(HOP_QUEUE=redis needs it\)/m);
    expect(both.message).toMatch(/^ {2}HOP_REDIS_TOKEN: missing \(HOP_QUEUE=redis needs it\)/m);
    const token = configError({ HOP_QUEUE: 'redis', HOP_REDIS_URL: 'https://x.upstash.io' }, loadServerConfig);
    expect([...token.message.matchAll(/^ {2}([A-Z_]+):/gm)].map((m) => m[1])).toEqual(['HOP_REDIS_TOKEN']);
    expect(configError({ HOP_REDIS_TOKEN: 't' }, loadServerConfig).message).toMatch(/^ {2}HOP_REDIS_URL: missing \(HOP_REDIS_URL and HOP_REDIS_TOKEN go together\)/m);
  });

  it('refuses a redis:// URL (the queue speaks the REST protocol), a consumer switched off without Redis, and a dead-letter stream that is the stream', () => {
    const url = configError({ HOP_QUEUE: 'redis', HOP_REDIS_URL: 'redis://127.0.0.1:6379', HOP_REDIS_TOKEN: 't' }, loadServerConfig);
    expect(url.message).toMatch(/^ {2}HOP_REDIS_URL: must be the REST URL/m);
    expect(configError({ HOP_CLICK_CONSUMER: 'off' }, loadServerConfig).message).toMatch(/^ {2}HOP_CLICK_CONSUMER: off needs HOP_QUEUE=redis/m);
    expect(configError({ HOP_QUEUE_STREAM: 'x', HOP_QUEUE_DEAD_LETTER: 'x' }, loadServerConfig).message).toMatch(/^ {2}HOP_QUEUE_DEAD_LETTER: must differ/m);
  });

  it('does not echo the Redis token', () => {
    const err = configError({ HOP_QUEUE: 'redis', HOP_REDIS_URL: 'nope', HOP_REDIS_TOKEN: 'tiny-secret-value' }, loadServerConfig);
    expect(err.message).not.toContain('tiny-secret-value');
  });

  it('names the bad variables of both the shared and the Node/Bun settings at once', () => {
    // Each rule between variables runs once the variables it reads are valid, whatever else is wrong: HOP_QUEUE=redis
    // is valid, so the missing Redis URL and token are named with the bad PORT and HOP_QUEUE_MAX_DELIVERIES (before,
    // a bad Node/Bun variable hid the rules of the Node/Bun settings, and an operator learnt of them one start later).
    const err = configError({ PORT: 'abc', HOP_QUEUE: 'redis', HOP_QUEUE_MAX_DELIVERIES: '0' }, loadServerConfig);
    const named = [...err.message.matchAll(/^ {2}([A-Z_]+):/gm)].map((m) => m[1]);
    expect(named).toEqual(['PORT', 'HOP_QUEUE_MAX_DELIVERIES', 'HOP_REDIS_URL', 'HOP_REDIS_TOKEN']);
    const missing = configError({ PORT: 'abc', HOP_QUEUE: 'redis' }, loadServerConfig);
    expect([...missing.message.matchAll(/^ {2}([A-Z_]+):/gm)].map((m) => m[1])).toEqual(['PORT', 'HOP_REDIS_URL', 'HOP_REDIS_TOKEN']);
  });

  it('skips a rule whose variables did not parse, and names the broken rules beside the bad values', () => {
    // HOP_DATABASE_URL is bad: the sync-URL rule, which reads it, would only add noise.
    const bad = configError({ HOP_DATABASE_URL: 'postgres://x', HOP_DATABASE_SYNC_URL: 'http://127.0.0.1:8081' });
    expect(bad.problems.map((p) => p.variable)).toEqual(['HOP_DATABASE_URL']);
    const both = configError({ PORT: 'abc', HOP_DATABASE_URL: 'http://127.0.0.1:8080', HOP_DATABASE_SYNC_URL: 'http://127.0.0.1:8081' });
    expect(both.problems.map((p) => p.variable)).toEqual(['PORT', 'HOP_DATABASE_SYNC_URL']);
  });

  it('formats every configuration error one way, from its problems', () => {
    const err = new ConfigError([
      { variable: 'HOP_QUEUE', message: 'hop consume needs HOP_QUEUE=redis' },
      { variable: 'PORT', message: 'must be a decimal integer' },
    ]);
    expect(err.message).toBe(formatConfigProblems(err.problems));
    expect(err.message).toBe('Invalid configuration:\n  HOP_QUEUE: hop consume needs HOP_QUEUE=redis\n  PORT: must be a decimal integer');
    expect(configError({ PORT: 'abc' }).problems).toEqual([{ variable: 'PORT', message: 'must be a decimal integer' }]);
  });

  it('names every bad variable at once', () => {
    const err = configError({ PORT: 'abc', HOP_LOG_LEVEL: 'loud', HOP_DATABASE_URL: 'postgres://x' });
    for (const name of ['PORT', 'HOP_LOG_LEVEL', 'HOP_DATABASE_URL']) {
      expect(err.message).toMatch(new RegExp(`^  ${name}: `, 'm'));
    }
  });

  it('does not echo the value of a secret it refuses', () => {
    const err = configError({ HOP_ADMIN_TOKEN: 'tiny-secret-value' });
    expect(err.message).not.toContain('tiny-secret-value');
  });

  it('treats empty strings as unset', () => {
    expect(
      loadConfig({
        PORT: '',
        HOST: '',
        HOP_DATABASE_URL: '',
        HOP_DATABASE_AUTH_TOKEN: '',
        HOP_BASE_URL: '',
        HOP_ADMIN_TOKEN: '',
        HOP_LOG_LEVEL: '',
        HOP_LOG_SAMPLE_RATE: '',
        HOP_BODY_LIMIT_BYTES: '',
        HOP_GEO_HEADER: '',
        HOP_READY_TIMEOUT_MS: '',
      }),
    ).toEqual(loadConfig({}));
  });

  describe('rate limits', () => {
    const KEY_A = `key_${'0123456789abcdef'.repeat(2)}`;
    const KEY_B = `key_${'fedcba9876543210'.repeat(2)}`;
    const named = (err: ConfigError) => [...err.message.matchAll(/^ {2}([A-Z_]+):/gm)].map((m) => m[1]);

    it('reads every rate-limit variable, windows in seconds, minutes or hours', () => {
      expect(
        loadConfig({
          HOP_RATE_LIMIT: 'redis',
          HOP_REDIS_URL: 'https://eu1-example.upstash.io',
          HOP_REDIS_TOKEN: 'secret-token',
          HOP_RATE_LIMIT_SALT: 's'.repeat(16),
          HOP_RATE_LIMIT_API: '1000/1m',
          HOP_RATE_LIMIT_KEY_OVERRIDES: ` ${KEY_A}=5000/1h , ${KEY_B}=10/10s`,
          HOP_RATE_LIMIT_UNAUTHENTICATED: '10/60s',
          HOP_RATE_LIMIT_REDIRECT: '100000/24h',
          HOP_RATE_LIMIT_NOT_FOUND: '1/1s',
          HOP_RATE_LIMIT_ON_ERROR: 'closed',
          HOP_RATE_LIMIT_TIMEOUT_MS: '250',
          HOP_CLIENT_IP_HEADER: 'X-Forwarded-For',
        }),
      ).toMatchObject({
        rateLimit: {
          mode: 'redis',
          api: { limit: 1000, windowS: 60 },
          keyOverrides: new Map([
            [KEY_A, { limit: 5000, windowS: 3600 }],
            [KEY_B, { limit: 10, windowS: 10 }],
          ]),
          unauthenticated: { limit: 10, windowS: 60 },
          redirect: { limit: 100_000, windowS: 86_400 },
          notFound: { limit: 1, windowS: 1 },
          onError: 'closed',
          timeoutMs: 250,
          salt: 's'.repeat(16),
        },
        clientIpHeader: 'x-forwarded-for',
      });
      expect(loadConfig({ HOP_RATE_LIMIT: 'off' }).rateLimit.mode).toBe('off');
    });

    it('explains the quota syntax', () => {
      expect(configError({ HOP_RATE_LIMIT_REDIRECT: '600' }).message).toBe(
        'Invalid configuration:\n  HOP_RATE_LIMIT_REDIRECT: must be <limit>/<window>, e.g. 600/60s (a window in s, m or h, at most 24h)',
      );
    });

    it.each([
      ['hop_' + 'x'.repeat(43) + '=5/60s', /entry 1: that is an API key; name its id \(key_\.\.\.\)/],
      ['key_abc=5/60s', /entry 1: must be <key id>=<limit>\/<window>/],
      [`${KEY_A}`, /entry 1: after "=", must be <limit>\/<window>/],
      [`${KEY_A}=fast`, /entry 1: after "=", must be <limit>\/<window>/],
      [`${KEY_A}=5/60s,`, /entry 2: must be <key id>=<limit>\/<window>/],
      [`${KEY_A}=5/60s,${KEY_A}=6/60s`, /entry 2: key_0123\w+ is given twice/],
    ])('refuses the override %s, naming the entry', (value, message) => {
      const err = configError({ HOP_RATE_LIMIT_KEY_OVERRIDES: value });
      expect(named(err)).toEqual(['HOP_RATE_LIMIT_KEY_OVERRIDES']);
      expect(err.message).toMatch(message);
      // An API key put there by mistake is not repeated into the logs.
      expect(err.message).not.toContain('x'.repeat(43));
    });

    it('needs the Redis URL, token and an HMAC secret for HOP_RATE_LIMIT=redis', () => {
      const err = configError({ HOP_RATE_LIMIT: 'redis' });
      expect(named(err)).toEqual(['HOP_REDIS_URL', 'HOP_REDIS_TOKEN', 'HOP_RATE_LIMIT_SALT']);
      expect(err.message).toMatch(/^ {2}HOP_REDIS_URL: missing \(HOP_RATE_LIMIT=redis needs it\)/m);
      expect(err.message).toMatch(/^ {2}HOP_RATE_LIMIT_SALT: missing \(HOP_RATE_LIMIT=redis needs it: client addresses/m);
    });

    it('holds the Cloudflare bindings to their 10 or 60 s period and refuses per-key overrides there', () => {
      expect(loadConfig({ HOP_RATE_LIMIT: 'cloudflare', HOP_RATE_LIMIT_API: '100/10s' }).rateLimit.mode).toBe('cloudflare');
      const err = configError({
        HOP_RATE_LIMIT: 'cloudflare',
        HOP_RATE_LIMIT_API: '600/1m',
        HOP_RATE_LIMIT_REDIRECT: '600/1h',
        HOP_RATE_LIMIT_NOT_FOUND: '60/30s',
        HOP_RATE_LIMIT_KEY_OVERRIDES: `${KEY_A}=5/60s`,
      });
      expect(named(err)).toEqual(['HOP_RATE_LIMIT_REDIRECT', 'HOP_RATE_LIMIT_NOT_FOUND', 'HOP_RATE_LIMIT_KEY_OVERRIDES']);
      expect(err.message).toMatch(/HOP_RATE_LIMIT_REDIRECT: the window must be 10s or 60s with HOP_RATE_LIMIT=cloudflare/);
      expect(err.message).toMatch(/HOP_RATE_LIMIT_KEY_OVERRIDES: needs HOP_RATE_LIMIT=memory or redis/);
    });

    it('keeps the Cloudflare store for Workers: Node and Bun refuse it', () => {
      expect(configError({ HOP_RATE_LIMIT: 'cloudflare' }, loadServerConfig).message).toMatch(
        /^ {2}HOP_RATE_LIMIT: cloudflare is a Workers binding; use memory or redis on Node and Bun$/m,
      );
    });

    it('does not echo the HMAC secret', () => {
      expect(configError({ HOP_RATE_LIMIT_SALT: 'tiny-secret' }).message).not.toContain('tiny-secret');
    });
  });

  it('ignores variables it does not know', () => {
    expect(loadConfig({ PATH: '/usr/bin', HOP_UNKNOWN: 'x' })).toEqual(loadConfig({}));
  });
});

describe('workerConfig', () => {
  const names = (env: Record<string, string>) => configError(env, workerConfig).problems.map((p) => p.variable);

  it('needs a remote database', () => {
    expect(configError({}, workerConfig).message).toBe(
      'Invalid configuration:\n  HOP_DATABASE_URL: is required on Workers (libsql:// for Turso, http(s):// for sqld)',
    );
    expect(configError({ HOP_DATABASE_URL: 'file:./hop.db' }, workerConfig).message).toMatch(/^ {2}HOP_DATABASE_URL: a Worker has no file system/m);
  });

  it('reads HOP_DATABASE_SHARDS on a Worker, servers only: a Worker has no file system', () => {
    const vars = { HOP_DATABASE_URL: 'libsql://control.turso.io', HOP_DATABASE_SHARDS: 'libsql://s0.turso.io|libsql://r0.turso.io,http://127.0.0.1:8081' };
    expect(workerConfig(vars)).toMatchObject({
      databaseShards: ['libsql://s0.turso.io', 'http://127.0.0.1:8081'],
      databaseShardReplicas: [['libsql://r0.turso.io'], []],
    });
    expect(configError({ ...vars, HOP_DATABASE_SHARDS: 'libsql://s0.turso.io,file:./s1.db' }, workerConfig).message).toMatch(
      /^ {2}HOP_DATABASE_SHARDS: a Worker has no file system; every shard must be libsql:\/\/ \(Turso\) or http\(s\):\/\/ \(sqld\)/m,
    );
    expect(workerConfig({ HOP_DATABASE_URL: 'libsql://control.turso.io' }).databaseShards).toBeUndefined();
  });

  it('names the bad variables and the Worker\'s own rules in one error', () => {
    expect(names({ PORT: 'abc' })).toEqual(['HOP_DATABASE_URL', 'PORT']);
    const redis = { HOP_REDIS_URL: 'https://x.upstash.io', HOP_REDIS_TOKEN: 't', HOP_RATE_LIMIT_SALT: 's'.repeat(16) };
    expect(names({ ...redis, HOP_DATABASE_URL: 'file:./hop.db', HOP_RATE_LIMIT: 'redis' })).toEqual(['HOP_DATABASE_URL', 'HOP_RATE_LIMIT']);
  });

  it('reads a Worker\'s configuration', () => {
    expect(workerConfig({ HOP_DATABASE_URL: 'libsql://db.example.turso.io', PORT: 9000 }).port).toBe(9000);
  });
});

describe('HOP_OIDC_*', () => {
  const issuer = 'https://login.example.com/tenant/v2.0';

  it('configures the provider with its defaults, the issuer kept exactly as written', () => {
    expect(loadConfig({ HOP_OIDC_ISSUER: `${issuer}/`, HOP_OIDC_AUDIENCE: 'https://hop.example/api' }).oidc).toEqual({
      issuer: `${issuer}/`,
      audience: 'https://hop.example/api',
      jwksUrl: undefined,
      workspaceClaim: 'hop_workspace',
      scopesClaim: 'scope',
      clockSkewS: 30,
      jwksCooldownS: 30,
    });
  });

  it('accepts http:// on a loopback address only', () => {
    for (const loopback of ['http://127.0.0.1:9000', 'http://localhost:9000/realms/hop', 'http://[::1]:9000', 'http://127.1.2.3']) {
      expect(loadConfig({ HOP_OIDC_ISSUER: loopback, HOP_OIDC_AUDIENCE: 'hop' }).oidc?.issuer).toBe(loopback);
    }
    for (const remote of ['http://login.example.com', 'http://10.0.0.1', 'http://127.0.0.1.example.com', 'http://localhost.example.com']) {
      expect(configError({ HOP_OIDC_ISSUER: remote, HOP_OIDC_AUDIENCE: 'hop' }).problems).toEqual([
        { variable: 'HOP_OIDC_ISSUER', message: expect.stringMatching(/^must be https:\/\/ \(http:\/\/ only on a loopback address/) },
      ]);
    }
  });

  it('refuses other schemes, credentials, fragments and, for the issuer, a query string', () => {
    const bad = {
      HOP_OIDC_ISSUER: 'https://login.example.com/?tenant=1',
      HOP_OIDC_AUDIENCE: 'hop',
      HOP_OIDC_JWKS_URL: 'ftp://login.example.com/jwks',
    };
    expect(configError(bad).problems.map((p) => p.variable).sort()).toEqual(['HOP_OIDC_ISSUER', 'HOP_OIDC_JWKS_URL']);
    expect(configError({ HOP_OIDC_ISSUER: 'https://user:pw@login.example.com', HOP_OIDC_AUDIENCE: 'hop' }).problems[0]!.message).toMatch(/credentials/);
    expect(configError({ HOP_OIDC_ISSUER: 'not a url', HOP_OIDC_AUDIENCE: 'hop' }).problems[0]!.variable).toBe('HOP_OIDC_ISSUER');
    expect(loadConfig({ HOP_OIDC_ISSUER: issuer, HOP_OIDC_AUDIENCE: 'hop', HOP_OIDC_JWKS_URL: 'https://keys.example.com/jwks?v=2' }).oidc?.jwksUrl).toBe(
      'https://keys.example.com/jwks?v=2',
    );
  });

  it('needs the audience with the issuer, and the issuer for the rest', () => {
    expect(configError({ HOP_OIDC_ISSUER: issuer }).problems).toEqual([
      { variable: 'HOP_OIDC_AUDIENCE', message: expect.stringMatching(/^missing \(HOP_OIDC_ISSUER needs it/) },
    ]);
    expect(configError({ HOP_OIDC_AUDIENCE: 'hop', HOP_OIDC_JWKS_URL: 'https://keys.example.com/jwks' }).problems).toEqual([
      { variable: 'HOP_OIDC_AUDIENCE', message: 'needs HOP_OIDC_ISSUER' },
      { variable: 'HOP_OIDC_JWKS_URL', message: 'needs HOP_OIDC_ISSUER' },
    ]);
  });

  it('bounds the clock skew and the cooldown, and refuses claim names with spaces', () => {
    const env = { HOP_OIDC_ISSUER: issuer, HOP_OIDC_AUDIENCE: 'hop' };
    expect(configError({ ...env, HOP_OIDC_CLOCK_SKEW_S: '301' }).problems[0]!.variable).toBe('HOP_OIDC_CLOCK_SKEW_S');
    expect(configError({ ...env, HOP_OIDC_JWKS_COOLDOWN_S: '0' }).problems[0]!.variable).toBe('HOP_OIDC_JWKS_COOLDOWN_S');
    expect(configError({ ...env, HOP_OIDC_WORKSPACE_CLAIM: 'hop workspace' }).problems[0]!.variable).toBe('HOP_OIDC_WORKSPACE_CLAIM');
    expect(loadConfig({ ...env, HOP_OIDC_SCOPES_CLAIM: 'scp', HOP_OIDC_WORKSPACE_CLAIM: 'https://hop.example/ws' }).oidc).toMatchObject({
      scopesClaim: 'scp',
      workspaceClaim: 'https://hop.example/ws',
    });
  });

  it('is read from Worker bindings like any other variable', () => {
    expect(workerConfig({ HOP_DATABASE_URL: 'http://127.0.0.1:8080', HOP_OIDC_ISSUER: issuer, HOP_OIDC_AUDIENCE: 'hop' } as never).oidc?.issuer).toBe(issuer);
  });
});
