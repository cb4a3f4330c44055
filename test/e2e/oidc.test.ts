// OIDC access tokens end to end: hop started as a real process (Node, Bun, and workerd through `wrangler dev`) with
// HOP_OIDC_*, against a real OpenID Connect provider (npm `oidc-provider`) running in this test process on
// 127.0.0.1. Tokens come from its client-credentials grant; the refused ones are forged with its own signing key
// (expired, not yet valid, another issuer) or built by hand (`alg: none`, HS256 keyed with the public key).
import { randomUUID } from 'node:crypto';
import { exportSPKI, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectProblem } from '../blackbox/suite.ts';
import { missingPrerequisite, startTarget, targetName, type Target, type TargetSpec } from '../blackbox/targets.ts';
import { startOidcProvider, type OidcProvider } from '../support/oidc-provider.ts';

const AUDIENCE = 'https://hop.test/api';
const CLIENTS = [
  // `other:api` is another API's scope in the same token: hop ignores it.
  { id: 'writer-a', secret: randomUUID(), scope: 'links:read links:write other:api' },
  { id: 'reader-a', secret: randomUUID(), scope: 'links:read' },
  { id: 'writer-b', secret: randomUUID(), scope: 'links:read links:write' },
  { id: 'ghost', secret: randomUUID(), scope: 'links:read' },
];

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);

function oidcSuite(spec: TargetSpec) {
  const title = `${targetName(spec)} with OIDC tokens`;
  const reason = missingPrerequisite(spec);
  if (reason && process.env.CI === 'true') {
    describe(title, () => it('has its runtime installed', () => expect.fail(reason)));
    return;
  }
  if (reason) console.warn(`[oidc] ${title} skipped: ${reason}`);

  describe.skipIf(reason !== undefined)(reason ? `${title} (skipped: ${reason})` : title, () => {
    let provider: OidcProvider;
    let target: Target;
    const ws = { a: '', b: '' };
    let linkOfA = '';

    beforeAll(async () => {
      provider = await startOidcProvider({ audience: AUDIENCE, clients: CLIENTS });
      target = await startTarget({
        ...spec,
        env: {
          HOP_OIDC_ISSUER: provider.issuer,
          HOP_OIDC_AUDIENCE: AUDIENCE,
          // One second between fetches of the provider's keys, so the rotation case need not wait 30.
          HOP_OIDC_JWKS_COOLDOWN_S: '1',
        },
      });
      for (const name of ['a', 'b'] as const) {
        const res = await call(target.baseUrl, '/v1/workspaces', { method: 'POST', key: target.adminToken, json: { name } });
        expect(res.status).toBe(201);
        ws[name] = ((await res.json()) as { id: string }).id;
      }
      provider.setWorkspace('writer-a', ws.a);
      provider.setWorkspace('reader-a', ws.a);
      provider.setWorkspace('writer-b', ws.b);
      // A well-formed workspace id that no workspace has.
      provider.setWorkspace('ghost', ws.a.replace(/[0-9a-f]{8}$/, '00000000'));
    }, 120_000);
    afterAll(async () => {
      await target?.stop();
      await provider?.stop();
    }, 30_000);

    /** A token signed with the provider's current key, its claims those of writer-a's unless overridden. */
    async function forge(claims: JWTPayload, header: Record<string, unknown> = {}) {
      const jwk = provider.signingKey;
      const key = await importJWK(jwk, jwk.alg);
      return new SignJWT({ sub: 'writer-a', hop_workspace: ws.a, scope: 'links:read', iss: provider.issuer, aud: AUDIENCE, ...claims })
        .setProtectedHeader({ alg: jwk.alg!, kid: jwk.kid, typ: 'at+jwt', ...header })
        .setIssuedAt()
        .sign(key);
    }

    async function expectRefused(token: string, detail: RegExp) {
      const res = await call(target.baseUrl, '/v1/links', { key: token });
      const challenge = res.headers.get('www-authenticate');
      const problem = await expectProblem(res, 401, 'unauthorized');
      expect(challenge).toMatch(/^Bearer .*error="invalid_token"/);
      expect(problem.detail).toMatch(detail);
    }

    it('accepts a client-credentials token: creates a link in its workspace and reads it', async () => {
      const token = await provider.token('writer-a');
      const created = await call(target.baseUrl, '/v1/links', { method: 'POST', key: token, json: { url: 'https://example.com/oidc' } });
      expect(created.status, await created.clone().text()).toBe(201);
      linkOfA = ((await created.json()) as { id: string }).id;
      const read = await call(target.baseUrl, `/v1/links/${linkOfA}`, { key: token });
      expect(read.status).toBe(200);
      expect(((await read.json()) as { url: string }).url).toBe('https://example.com/oidc');
      expect(provider.fetches.discovery).toBe(1);
    });

    it("keeps a token of workspace B away from workspace A's link (404)", async () => {
      const token = await provider.token('writer-b');
      await expectProblem(await call(target.baseUrl, `/v1/links/${linkOfA}`, { key: token }), 404, 'not-found');
      const list = await call(target.baseUrl, '/v1/links', { key: token });
      expect(list.status).toBe(200);
      expect(JSON.stringify(await list.json())).not.toContain(linkOfA);
    });

    it('refuses a write without links:write: 403 insufficient_scope; the read it has is allowed', async () => {
      const token = await provider.token('reader-a');
      const res = await call(target.baseUrl, '/v1/links', { method: 'POST', key: token, json: { url: 'https://example.com/ro' } });
      expect(res.headers.get('www-authenticate')).toMatch(/error="insufficient_scope", scope="links:write"/);
      await expectProblem(res, 403, 'forbidden');
      expect((await call(target.baseUrl, `/v1/links/${linkOfA}`, { key: token })).status).toBe(200);
    });

    it('refuses a token for a workspace that does not exist', async () => {
      await expectRefused(await provider.token('ghost'), /workspace does not exist/);
    });

    it('refuses an expired token', async () => {
      await expectRefused(await forge({ exp: nowS() - 3600 }), /expired/);
    });

    it('refuses a token not valid yet (nbf)', async () => {
      await expectRefused(await forge({ nbf: nowS() + 3600, exp: nowS() + 7200 }), /not valid yet/);
    });

    it('refuses a token of the provider for another audience', async () => {
      await expectRefused(await provider.token('writer-a', { resource: 'https://other.test/api' }), /another audience/);
    });

    it('refuses a token of another issuer, even signed with the same key', async () => {
      await expectRefused(await forge({ iss: 'https://evil.test', exp: nowS() + 300 }), /another issuer/);
    });

    it('refuses alg "none"', async () => {
      const claims = { sub: 'writer-a', hop_workspace: ws.a, scope: 'links:read', iss: provider.issuer, aud: AUDIENCE, exp: nowS() + 300 };
      await expectRefused(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`, /algorithm is not accepted/);
    });

    it('refuses HS256 signed with the public key as the HMAC secret', async () => {
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = provider.signingKey;
      const pem = await exportSPKI((await importJWK(publicJwk as JWK, provider.signingKey.alg)) as CryptoKey);
      for (const secret of [pem, JSON.stringify(publicJwk)]) {
        const token = await new SignJWT({ sub: 'writer-a', hop_workspace: ws.a, scope: 'links:write', iss: provider.issuer, aud: AUDIENCE })
          .setProtectedHeader({ alg: 'HS256', kid: provider.signingKey.kid })
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(secret));
        await expectRefused(token, /algorithm is not accepted/);
      }
    });

    it('refuses a token whose signature does not match', async () => {
      const [header, payload] = (await provider.token('writer-a')).split('.');
      const other = (await forge({ exp: nowS() + 300 })).split('.')[2];
      await expectRefused(`${header}.${payload}.${other}`, /signature is invalid/);
    });

    it('fetches the keys at most once per cooldown under a flood of unknown kids', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const before = provider.fetches.jwks;
      const tokens = await Promise.all(
        Array.from({ length: 20 }, () =>
          new SignJWT({ sub: 'writer-a', hop_workspace: ws.a, scope: 'links:read', iss: provider.issuer, aud: AUDIENCE })
            .setProtectedHeader({ alg: 'RS256', kid: `bogus-${randomUUID()}` })
            .setExpirationTime('5m')
            .sign(privateKey),
        ),
      );
      const answers = await Promise.all(tokens.map((key) => call(target.baseUrl, '/v1/links', { key })));
      for (const res of answers) await expectProblem(res, 401, 'unauthorized');
      expect(provider.fetches.jwks - before).toBeLessThanOrEqual(2);
    });

    it('accepts the new key after the provider rotates (an unknown kid refetches the JWKS)', async () => {
      const oldKey = provider.signingKey;
      await provider.rotate();
      const token = await provider.token('writer-a');
      expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toMatchObject({ alg: 'ES256' });
      expect(provider.signingKey.kid).not.toBe(oldKey.kid);
      const before = provider.fetches.jwks;
      // Past the cooldown of the previous fetch (1 s), the unknown kid makes hop fetch the keys again.
      await new Promise((r) => setTimeout(r, 1100));
      const res = await call(target.baseUrl, `/v1/links/${linkOfA}`, { key: token });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(provider.fetches.jwks).toBe(before + 1);
      // A token signed with the old key, still published, is still accepted.
      const signedWithOld = await new SignJWT({ sub: 'writer-a', hop_workspace: ws.a, scope: 'links:read', iss: provider.issuer, aud: AUDIENCE })
        .setProtectedHeader({ alg: oldKey.alg!, kid: oldKey.kid })
        .setExpirationTime('5m')
        .sign(await importJWK(oldKey, oldKey.alg));
      const old = await call(target.baseUrl, `/v1/links/${linkOfA}`, { key: signedWithOld });
      expect(old.status).toBe(200);
    });

    it('still authenticates API keys beside tokens', async () => {
      const res = await call(target.baseUrl, '/v1/links', { key: 'hop_' + 'x'.repeat(43) });
      const problem = await expectProblem(res, 401, 'unauthorized');
      expect(problem.detail).toMatch(/API key/);
    });
  });
}

oidcSuite({ runtime: 'node', storage: 'file' });
oidcSuite({ runtime: 'bun', storage: 'file' });
oidcSuite({ runtime: 'workerd', storage: 'sqld' });
