// The token verifier alone (src/platform/oidc.ts), over a fake provider (a fetch function) and a clock the tests
// move: discovery, the cooldown between fetches, stale keys while the provider is down, claim mapping. The real
// provider, over HTTP and on every runtime, is test/e2e/oidc.test.ts's.
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type OidcConfig } from '../../src/config.ts';
import { AppError } from '../../src/errors.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createTokenVerifier } from '../../src/platform/oidc.ts';

const ISSUER = 'https://login.example.com';
const AUDIENCE = 'hop';

let signing: { privateKey: CryptoKey; jwk: JWK };
beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  signing = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' } };
});

function provider() {
  const state = { up: true, discovery: { issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` } as Record<string, unknown>, calls: [] as string[] };
  const fetch = (async (input: string | URL | Request) => {
    const url = String(input);
    state.calls.push(url);
    if (!state.up) throw new TypeError('fetch failed');
    if (url === `${ISSUER}/.well-known/openid-configuration`) return Response.json(state.discovery);
    if (url === `${ISSUER}/jwks`) return Response.json({ keys: [signing.jwk] });
    return new Response('not found', { status: 404 });
  }) as typeof globalThis.fetch;
  return { state, fetch };
}

function setup(env: Record<string, string> = {}) {
  const config = loadConfig({ HOP_OIDC_ISSUER: ISSUER, HOP_OIDC_AUDIENCE: AUDIENCE, ...env }).oidc as OidcConfig;
  const clock = { now: new Date('2026-12-01T12:00:00Z') };
  const fake = provider();
  const verifier = createTokenVerifier({
    config,
    now: () => new Date(clock.now),
    logger: createLogger({ level: 'silent' }),
    shareFetches: true,
    fetch: fake.fetch,
  });
  const sign = (claims: JWTPayload = {}, kid = 'k1') =>
    new SignJWT({ sub: 'svc', hop_workspace: 'ws_1', scope: 'links:read openid', iss: ISSUER, aud: AUDIENCE, ...claims })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuedAt(Math.floor(clock.now.getTime() / 1000))
      .setExpirationTime(Math.floor(clock.now.getTime() / 1000) + 300)
      .sign(signing.privateKey);
  const advance = (ms: number) => void (clock.now = new Date(clock.now.getTime() + ms));
  return { verifier, sign, advance, ...fake };
}

async function refusal(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

describe('createTokenVerifier', () => {
  it('discovers the JWKS once and maps sub, the workspace claim and the scopes', async () => {
    const { verifier, sign, state } = setup();
    expect(await verifier.verify(await sign())).toEqual({ subject: 'svc', workspace: 'ws_1', scopes: ['links:read', 'openid'] });
    await verifier.verify(await sign());
    expect(state.calls).toEqual([`${ISSUER}/.well-known/openid-configuration`, `${ISSUER}/jwks`]);
  });

  it('reads the configured claims; a list of scopes is accepted too', async () => {
    const { verifier, sign } = setup({ HOP_OIDC_WORKSPACE_CLAIM: 'https://hop.example/ws', HOP_OIDC_SCOPES_CLAIM: 'scp' });
    const token = await sign({ 'https://hop.example/ws': 'ws_2', scp: ['links:write'], sub: undefined, client_id: 'client-9' });
    expect(await verifier.verify(token)).toEqual({ subject: 'client-9', workspace: 'ws_2', scopes: ['links:write'] });
  });

  it('refuses a token without the workspace claim, or with scopes of the wrong type', async () => {
    const { verifier, sign } = setup();
    expect((await refusal(verifier.verify(await sign({ hop_workspace: undefined })))).message).toMatch(/no "hop_workspace" claim/);
    expect((await refusal(verifier.verify(await sign({ scope: 42 })))).code).toBe('unauthorized');
    // No scopes claim at all: authenticated, with no scope (every route then answers 403).
    expect((await verifier.verify(await sign({ scope: undefined }))).scopes).toEqual([]);
  });

  it('uses HOP_OIDC_JWKS_URL without discovery', async () => {
    const { verifier, sign, state } = setup({ HOP_OIDC_JWKS_URL: `${ISSUER}/jwks` });
    await verifier.verify(await sign());
    expect(state.calls).toEqual([`${ISSUER}/jwks`]);
  });

  it('accepts exp and nbf within the clock skew, not past it', async () => {
    const { verifier, sign, advance } = setup({ HOP_OIDC_CLOCK_SKEW_S: '30' });
    const token = await sign();
    advance(300_000 + 20_000);
    await verifier.verify(token);
    advance(20_000);
    expect((await refusal(verifier.verify(token))).message).toMatch(/expired/);
  });

  it('refuses a discovery document naming another issuer, or a jwks_uri on plain http: 503, not 401', async () => {
    for (const discovery of [
      { issuer: 'https://evil.example.com', jwks_uri: `${ISSUER}/jwks` },
      { issuer: ISSUER, jwks_uri: 'http://keys.example.com/jwks' },
    ]) {
      const { verifier, sign, state } = setup();
      state.discovery = discovery;
      const err = await refusal(verifier.verify(await sign()));
      expect(err.code).toBe('unavailable');
    }
  });

  it('fetches at most once per cooldown while the provider is down, answering unavailable with Retry-After', async () => {
    const { verifier, sign, state, advance } = setup({ HOP_OIDC_JWKS_COOLDOWN_S: '10' });
    state.up = false;
    const token = await sign();
    const first = await refusal(verifier.verify(token));
    expect(first.code).toBe('unavailable');
    expect(first.retryAfterS).toBe(10);
    advance(4000);
    for (let i = 0; i < 20; i++) expect((await refusal(verifier.verify(token))).retryAfterS).toBe(6);
    expect(state.calls).toHaveLength(1);
    advance(6000);
    state.up = true;
    expect((await verifier.verify(token)).workspace).toBe('ws_1');
  });

  it('keeps serving the keys it has when a refresh fails, and refreshes them after 10 minutes', async () => {
    const { verifier, sign, state, advance } = setup();
    await verifier.verify(await sign());
    state.up = false;
    advance(11 * 60_000);
    expect((await verifier.verify(await sign())).subject).toBe('svc');
    expect(state.calls.at(-1)).toBe(`${ISSUER}/jwks`);
    expect(state.calls).toHaveLength(3);
  });

  it('refetches for an unknown kid once per cooldown, however many arrive', async () => {
    const { verifier, sign, state, advance } = setup({ HOP_OIDC_JWKS_COOLDOWN_S: '30' });
    await verifier.verify(await sign());
    advance(31_000);
    const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => refusal(verifier.verify(await sign({}, `bogus-${i}`)))));
    for (const err of results) expect(err.message).toMatch(/key the provider does not publish/);
    expect(state.calls.filter((u) => u.endsWith('/jwks'))).toHaveLength(2);
  });
});
