// Worker-only behaviour, inside workerd: configuration from bindings (wrangler.toml's vars plus secrets), a
// configuration error answered as problem+json, one app per isolate, a database that cannot be reached answering 503
// within the deadline, and HSTS for requests the edge hands over as https. The shared HTTP behaviour is the
// black-box suite's (test/blackbox/).
import { exports } from 'cloudflare:workers';
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker, { appFor, configFromBindings } from '../../src/runtimes/worker.ts';

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
const ADMIN = 'a'.repeat(40);
// Nothing listens on port 9 (discard) on loopback: connections are refused at once.
const UNREACHABLE = 'http://127.0.0.1:9';

async function problem(res: Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body.status).toBe(status);
  expect(JSON.stringify(body)).not.toMatch(/stack|at .*\.ts|HOP_DATABASE_URL|SQLITE/);
  return body;
}

describe('the Worker as wrangler.toml configures it', () => {
  it('reads its vars from the bindings', () => {
    expect(env).toMatchObject({ HOP_LOG_LEVEL: 'info', HOP_DATABASE_TIMEOUT_MS: '2000' });
  });

  it('answers 500 problem+json, without naming the secret, until HOP_DATABASE_URL is set', async () => {
    const res = await exports.default.fetch('http://localhost/v1/links');
    const body = await problem(res, 500);
    expect(body.detail).toMatch(/misconfigured/);
  });
});

describe('configuration from bindings', () => {
  it('reads vars given as JSON numbers or booleans as text and ignores non-text bindings', () => {
    const kv = { get() {} };
    expect(configFromBindings({ PORT: 8080, HOP_LOG_LEVEL: 'warn', FLAG: true, CACHE: kv })).toEqual({
      PORT: '8080',
      HOP_LOG_LEVEL: 'warn',
      FLAG: 'true',
    });
  });

  it.each([
    ['a file: database', { HOP_DATABASE_URL: 'file:./data/hop.db' }],
    ['an embedded replica', { HOP_DATABASE_URL: 'file:./r.db', HOP_DATABASE_SYNC_URL: 'http://127.0.0.1:8080' }],
    ['a bad log level', { HOP_DATABASE_URL: UNREACHABLE, HOP_LOG_LEVEL: 'loud' }],
    ['a short admin token', { HOP_DATABASE_URL: UNREACHABLE, HOP_ADMIN_TOKEN: 'short' }],
    ['a file: shard', { HOP_DATABASE_URL: UNREACHABLE, HOP_DATABASE_SHARDS: 'http://127.0.0.1:10,file:./s.db' }],
    ['a file: replica', { HOP_DATABASE_URL: UNREACHABLE, HOP_DATABASE_SHARDS: 'http://127.0.0.1:10|file:./r.db' }],
  ])('refuses %s: 500 problem+json on every path, even the probes', async (_, bindings) => {
    for (const path of ['/livez', '/v1/links', '/some-slug']) {
      await problem(await worker.fetch(new Request(`http://localhost${path}`), { ...bindings }, ctx), 500);
    }
  });

  it('builds the app once per set of bindings and reuses it', () => {
    const bindings = { HOP_DATABASE_URL: UNREACHABLE };
    const first = appFor(bindings);
    expect(appFor(bindings)).toBe(first);
    expect(appFor({ ...bindings })).not.toBe(first);
  });
});

describe('a database that cannot be reached', () => {
  const bindings = { HOP_DATABASE_URL: UNREACHABLE, HOP_ADMIN_TOKEN: ADMIN, HOP_LOG_LEVEL: 'silent' };
  const call = (path: string, init?: RequestInit) => worker.fetch(new Request(`http://localhost${path}`, init), bindings, ctx);

  it('keeps /livez up and turns /readyz to 503', async () => {
    expect((await call('/livez')).status).toBe(200);
    expect((await call('/readyz')).status).toBe(503);
  });

  it('answers the API and the redirect with 503 problem+json and Retry-After, within the deadline', async () => {
    const started = Date.now();
    for (const [path, init] of [
      ['/v1/links', { headers: { authorization: 'Bearer hop_' + 'x'.repeat(43) } }],
      ['/v1/workspaces', { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{"name":"w"}' }],
      ['/hello', {}],
    ] as const) {
      const res = await call(path, init);
      await problem(res, 503);
      expect(res.headers.get('retry-after')).toBe('1');
    }
    expect(Date.now() - started).toBeLessThan(3 * 2000);
  });
});

describe('shards whose control database cannot be reached', () => {
  const bindings = { HOP_DATABASE_URL: UNREACHABLE, HOP_DATABASE_SHARDS: 'http://127.0.0.1:10|http://127.0.0.1:11', HOP_LOG_LEVEL: 'silent' };
  const call = (path: string) => worker.fetch(new Request(`http://localhost${path}`), bindings, ctx);

  it('answers 503 problem+json while the bucket map cannot be read, and asks again on every request', async () => {
    const entry = appFor(bindings);
    expect('sharded' in entry).toBe(true);
    for (const path of ['/hello', '/v1/links', '/hello']) {
      const res = await call(path);
      await problem(res, 503);
      expect(res.headers.get('retry-after')).toBe('1');
    }
    // Nothing was kept from the failures: the same entry, still waiting for its map.
    expect(appFor(bindings)).toBe(entry);
  });
});

describe('TLS at Cloudflare\'s edge', () => {
  const bindings = { HOP_DATABASE_URL: UNREACHABLE, HOP_LOG_LEVEL: 'silent' };

  it('sends Strict-Transport-Security on API answers to https requests, which is how the edge hands them over', async () => {
    const overTls = await worker.fetch(new Request('https://hop.example/livez'), bindings, ctx);
    expect(overTls.status).toBe(200);
    expect(overTls.headers.get('strict-transport-security')).toBe('max-age=31536000');
    const plain = await worker.fetch(new Request('http://hop.example/livez'), bindings, ctx);
    expect(plain.headers.get('strict-transport-security')).toBeNull();
  });
});
