// OWASP API2:2023 Broken Authentication, against hop on Node over a file with OIDC tokens configured (a real
// OpenID Connect provider in this process, test/support/oidc-provider.ts) and a small quota of failed
// authentications per address. Forged and foreign tokens, bad keys in a burst, revoked keys, the last admin key.
// The full OIDC matrix (expiry, nbf, audience, rotation) is test/e2e/oidc.test.ts; the 200-round races are in
// test/blackbox/suite.ts.
import { randomUUID } from 'node:crypto';
import { exportSPKI, importJWK, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectProblem, type Workspace } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { startOidcProvider } from '../support/oidc-provider.ts';
import { owaspClient, type Link } from './client.ts';

const AUDIENCE = 'https://hop.test/owasp';
const provider = await startOidcProvider({
  audience: AUDIENCE,
  clients: [
    { id: 'writer-a', secret: randomUUID(), scope: 'links:read links:write' },
    { id: 'writer-b', secret: randomUUID(), scope: 'links:read links:write' },
  ],
});
afterAll(() => provider.stop());

const QUOTA = 10;
const env = {
  HOP_OIDC_ISSUER: provider.issuer,
  HOP_OIDC_AUDIENCE: AUDIENCE,
  HOP_CLIENT_IP_HEADER: 'x-forwarded-for',
  HOP_RATE_LIMIT_UNAUTHENTICATED: `${QUOTA}/60s`,
};
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describeTarget({ runtime: 'node', storage: 'file', env }, (target) => {
  const { api, createWorkspace, createLink, createKey, snapshot } = owaspClient(target);
  let a: Workspace;
  let b: Workspace;
  let linkOfB: Link;
  // Every test fails authentications from its own address, so that one test's failures do not limit the next.
  let address = 0;
  const from = () => ({ 'x-forwarded-for': `198.51.100.${++address}` });

  beforeAll(async () => {
    [a, b] = [await createWorkspace('api2-a'), await createWorkspace('api2-b')];
    provider.setWorkspace('writer-a', a.id);
    provider.setWorkspace('writer-b', b.id);
    linkOfB = await createLink(b, { url: 'https://b.example/' });
  });

  async function expectInvalidToken(token: string, detail: RegExp) {
    const res = await api('/v1/links', { method: 'POST', key: token, json: { url: 'https://a.example/' }, headers: from() });
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
    expect((await expectProblem(res, 401, 'unauthorized')).detail).toMatch(detail);
  }

  const claims = () => ({ sub: 'writer-a', hop_workspace: a.id, scope: 'links:write', iss: provider.issuer, aud: AUDIENCE });

  it('refuses a token with alg "none", storing nothing', async () => {
    const before = await snapshot(a);
    await expectInvalidToken(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...claims(), exp: Date.now() / 1000 + 300 })}.`, /algorithm/);
    expect(await snapshot(a)).toBe(before);
  });

  it("refuses an HS256 token keyed with the provider's public key", async () => {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = provider.signingKey;
    const pem = await exportSPKI((await importJWK(publicJwk as JWK, provider.signingKey.alg)) as CryptoKey);
    const token = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'HS256', kid: provider.signingKey.kid })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(pem));
    await expectInvalidToken(token, /algorithm/);
  });

  it('refuses a real token whose payload was changed to name another workspace', async () => {
    const [header, , signature] = (await provider.token('writer-a')).split('.');
    await expectInvalidToken(`${header}.${b64url({ ...claims(), hop_workspace: b.id, exp: Date.now() / 1000 + 300 })}.${signature}`, /signature/);
  });

  it("keeps workspace A's valid token away from B's link (404), and B's link as it was", async () => {
    const token = await provider.token('writer-a');
    const before = await snapshot(b);
    for (const method of ['GET', 'PATCH', 'DELETE']) {
      const json = method === 'PATCH' ? { url: 'https://attacker.example/' } : undefined;
      await expectProblem(await api(`/v1/links/${linkOfB.id}`, { method, key: token, json }), 404, 'not-found');
    }
    expect(await snapshot(b)).toBe(before);
  });

  it.each([
    ['no scheme', 'hop_abc'],
    ['Basic', 'Basic YWRtaW46YWRtaW4='],
    ['an empty Bearer', 'Bearer '],
    ['a 10 kB token', `Bearer ${'a'.repeat(10_000)}`],
    ['a key of another shape', 'Bearer sk_live_0123456789'],
    ['two tokens', `Bearer hop_${'x'.repeat(43)} hop_${'y'.repeat(43)}`],
  ])('refuses %s in Authorization with 401', async (_what, authorization) => {
    const headers = { ...from(), authorization };
    await expectProblem(await api('/v1/workspace', { headers }), 401, 'unauthorized');
  });

  it(`admits at most ${QUOTA} of 40 concurrent bad keys from one address, then answers 429 even to a good key`, async () => {
    const headers = from();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => api('/v1/workspace', { key: `hop_${'x'.repeat(40)}${i}`, headers })),
    );
    const statuses = answers.map((r) => r.status).sort();
    await Promise.all(answers.map((r) => r.body?.cancel()));
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(QUOTA);
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
    await expectProblem(await api('/v1/workspace', { key: a.key, headers }), 429, 'rate-limited');
  });

  it('refuses a revoked key on the very next request', async () => {
    const key = await createKey(a, ['links:read']);
    expect((await api('/v1/workspace', { key: key.key })).status).toBe(200);
    expect((await api(`/v1/keys/${key.id}`, { method: 'DELETE', key: a.key })).status).toBe(204);
    await expectProblem(await api('/v1/workspace', { key: key.key, headers: from() }), 401, 'unauthorized');
  });

  it('keeps exactly one admin key when two admin keys revoke each other (10 races; 200 in the black-box suite)', async () => {
    const ws = await createWorkspace('api2-race');
    const listed = (await (await api('/v1/keys', { key: ws.key })).json()) as { data: Array<{ id: string }> };
    let survivor = { id: listed.data[0]!.id, key: ws.key };
    for (let race = 0; race < 10; race++) {
      const x = await createKey({ ...ws, key: survivor.key }, ['workspace:admin']);
      const y = await createKey({ ...ws, key: survivor.key }, ['workspace:admin']);
      expect((await api(`/v1/keys/${survivor.id}`, { method: 'DELETE', key: x.key })).status).toBe(204);
      await Promise.all([
        api(`/v1/keys/${y.id}`, { method: 'DELETE', key: x.key, headers: from() }),
        api(`/v1/keys/${x.id}`, { method: 'DELETE', key: y.key, headers: from() }),
      ]);
      const works = await Promise.all([x, y].map(async (k) => (await api('/v1/workspace', { key: k.key, headers: from() })).status === 200));
      expect(works.filter(Boolean), `race ${race}`).toHaveLength(1);
      survivor = works[0] ? x : y;
    }
  });

  it("refuses the operator's token shape on workspace routes and an API key on the operator's", async () => {
    await expectProblem(await api('/v1/workspace', { key: target().adminToken, headers: from() }), 401, 'unauthorized');
    const res = await api('/v1/workspaces', { method: 'POST', key: a.key, json: { name: 'x' }, headers: from() });
    await expectProblem(res, 401, 'unauthorized');
  });
});
