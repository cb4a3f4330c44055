// OWASP API10:2023 Unsafe Consumption of APIs, against hop on Node over a file. hop consumes two outside APIs: the
// OIDC provider's discovery document and JWKS, and Upstash Redis over REST (the shared link cache and the rate
// limits here). Both are played by one hostile server in this process: a discovery document naming another issuer
// (it must not be trusted: tokens are answered 503, never accepted), and Redis answers that are not JSON, null,
// of the wrong type or errors; none may yield a 500, and redirects and the API keep working from the database.
// The verifier's own cases (jwks_uri on plain http, cooldowns, rotation) are in test/unit/oidc.test.ts.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectProblem, type Workspace } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { owaspClient } from './client.ts';

type RedisMode = 'not-json' | 'null' | 'wrong-type' | 'error' | 'huge';
let redisMode: RedisMode = 'not-json';
const seen = { discovery: 0, jwks: 0, redis: 0 };

const REDIS_ANSWERS: Record<RedisMode, (res: ServerResponse) => void> = {
  'not-json': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('<html>proxy error</html>'),
  null: (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('null'),
  'wrong-type': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":{"not":"what was asked"}}'),
  error: (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"error":"ERR wrong number of arguments"}'),
  huge: (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: 'x'.repeat(2_000_000) })),
};

function hostile(req: IncomingMessage, res: ServerResponse) {
  req.resume();
  if (req.url === '/.well-known/openid-configuration') {
    seen.discovery++;
    // OpenID Connect Discovery 1.0, 4.3: a document naming another issuer must not be used.
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ issuer: 'https://evil.example', jwks_uri: `${issuer}/jwks` }));
    return;
  }
  if (req.url === '/jwks') {
    seen.jwks++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
    return;
  }
  seen.redis++;
  REDIS_ANSWERS[redisMode](res);
}

const server = createServer(hostile);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const env = {
  HOP_OIDC_ISSUER: issuer,
  HOP_OIDC_AUDIENCE: 'https://hop.test/api10',
  HOP_OIDC_JWKS_COOLDOWN_S: '1',
  HOP_REDIS_URL: issuer,
  HOP_REDIS_TOKEN: 'api10-token',
  HOP_CACHE: 'redis',
};
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describeTarget({ runtime: 'node', storage: 'file', env, liveOnly: true }, (target) => {
  const { api, createWorkspace, createLink } = owaspClient(target);
  let ws: Workspace;

  beforeAll(async () => {
    ws = await createWorkspace('api10');
  });

  it('never accepts a token when the discovery document names another issuer: 503 with Retry-After, not 200', async () => {
    const token = `${b64url({ alg: 'RS256', kid: 'k' })}.${b64url({ iss: issuer, aud: 'https://hop.test/api10', sub: 'x', hop_workspace: ws.id, exp: Math.floor(Date.now() / 1000) + 300 })}.c2ln`;
    const res = await api('/v1/links', { key: token });
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await expectProblem(res, 503, 'unavailable');
    expect(seen.discovery).toBeGreaterThanOrEqual(1);
    // The JWKS the hostile document names is never fetched.
    expect(seen.jwks).toBe(0);
    // API keys do not depend on the provider.
    expect((await api('/v1/workspace', { key: ws.key })).status).toBe(200);
  });

  it.each<RedisMode>(['not-json', 'null', 'wrong-type', 'error', 'huge'])(
    'keeps serving redirects and the API when Redis answers %s',
    async (mode) => {
      redisMode = mode;
      const before = seen.redis;
      const link = await createLink(ws, { url: `https://example.com/${mode}`, slug: `api10-${mode}` });
      // After a few failures the cache's circuit breaker stops asking Redis for its cooldown (2 s), then probes it
      // again: visit until this mode's answer has really been consumed, every visit answered from the database.
      const deadline = Date.now() + 6000;
      let visits = 0;
      while (seen.redis === before || visits < 2) {
        if (Date.now() > deadline) throw new Error(`Redis was not asked again within 6 s (${visits} visits)`);
        const res = await api(`/api10-${mode}`);
        expect(res.status, await res.text()).toBe(302);
        expect(res.headers.get('location')).toBe(`https://example.com/${mode}`);
        visits++;
        if (seen.redis === before) await new Promise((r) => setTimeout(r, 200));
      }
      expect((await api(`/v1/links/${link.id}`, { key: ws.key })).status).toBe(200);
      await expectProblem(await api('/api10-nothing-here'), 404);
      await expectProblem(await api('/v1/links/lnk_nothing', { key: ws.key }), 404, 'not-found');
    },
  );
});
