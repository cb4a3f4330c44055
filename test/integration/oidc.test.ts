// OIDC access tokens in the composed app (in process, a real database file) with a real oidc-provider on
// 127.0.0.1: refused tokens count against the failed-authentication limit, and an unreachable provider answers 503
// with Retry-After, never a 500. The cases of each token are test/e2e/oidc.test.ts's, on every runtime.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/process.ts';
import { startOidcProvider, type OidcProvider } from '../support/oidc-provider.ts';
import { createTestApp, expectProblem, type TestApp } from '../helpers/app.ts';

const AUDIENCE = 'https://hop.test/api';
const CLIENT = { id: 'svc', secret: randomUUID(), scope: 'links:read links:write' };

let provider: OidcProvider;
beforeAll(async () => {
  provider = await startOidcProvider({ audience: AUDIENCE, clients: [CLIENT] });
});
afterAll(() => provider?.stop());

describe('OIDC tokens in the app', () => {
  let t: TestApp;
  afterAll(() => t?.close());

  it('counts refused tokens against HOP_RATE_LIMIT_UNAUTHENTICATED, then refuses even a good token with 429', async () => {
    t = await createTestApp({
      HOP_OIDC_ISSUER: provider.issuer,
      HOP_OIDC_AUDIENCE: AUDIENCE,
      HOP_RATE_LIMIT_UNAUTHENTICATED: '3/60s',
    });
    provider.setWorkspace(CLIENT.id, t.workspaceId);
    const good = await provider.token(CLIENT.id);
    expect((await t.request('/v1/links', { key: good })).status).toBe(200);
    const wrongAudience = await provider.token(CLIENT.id, { resource: 'https://other.test/api' });
    for (let i = 0; i < 3; i++) await expectProblem(await t.request('/v1/links', { key: wrongAudience }), 401, 'unauthorized');
    const limited = await t.request('/v1/links', { key: good });
    expect(limited.headers.get('retry-after')).not.toBeNull();
    await expectProblem(limited, 429, 'rate-limited');
  });
});

describe('an unreachable provider', () => {
  let t: TestApp;
  afterAll(() => t?.close());

  it('answers 503 with Retry-After and problem+json, and a garbage token still 401 without a fetch', async () => {
    const closed = await freePort();
    t = await createTestApp({ HOP_OIDC_ISSUER: `http://127.0.0.1:${closed}`, HOP_OIDC_AUDIENCE: AUDIENCE, HOP_OIDC_JWKS_COOLDOWN_S: '5' });
    // A token of the real provider, whose issuer hop does not know: the keys are looked up (and fail) before the
    // issuer is compared, so this is the provider-down path.
    provider.setWorkspace(CLIENT.id, t.workspaceId);
    const token = await provider.token(CLIENT.id);
    for (let i = 0; i < 3; i++) {
      const res = await t.request('/v1/links', { key: token });
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(5);
      await expectProblem(res, 503, 'unavailable');
    }
    await expectProblem(await t.request('/v1/links', { key: 'eyJhbGciOi.not-a-token.x' }), 401, 'unauthorized');
    expect(t.logs.filter((line) => line.includes('oidc provider unreachable'))).toHaveLength(1);
  });
});

describe('the OpenAPI document', () => {
  it('names the provider beside API keys in the bearer scheme when OIDC is on', async () => {
    const t = await createTestApp({ HOP_OIDC_ISSUER: provider.issuer, HOP_OIDC_AUDIENCE: AUDIENCE });
    try {
      const doc = (await (await t.request('/openapi.json', { key: null })).json()) as {
        components: { securitySchemes: { bearerAuth: { description: string } } };
      };
      expect(doc.components.securitySchemes.bearerAuth.description).toContain(`OpenID Connect provider ${provider.issuer}`);
    } finally {
      t.close();
    }
  });
});
