/**
 * Bearer JWTs from an OpenID Connect provider (HOP_OIDC_*): the issuer's discovery document, its JWKS cached and
 * fetched again on rotation at most once per cooldown, and each token's signature (asymmetric algorithms only),
 * issuer, audience and lifetime checked with jose. It knows neither workspaces nor HTTP: it answers the claims hop
 * maps, or throws AppError (`unauthorized` for a refused token, `unavailable` when the provider cannot be reached).
 */
import type { FlattenedJWSInput, JWTHeaderParameters } from 'jose';
import { createLocalJWKSet } from 'jose/jwks/local';
import { jwtVerify } from 'jose/jwt/verify';
import { providerUrlProblem, type OidcConfig } from '../config.ts';
import { AppError } from '../errors.ts';
import type { Logger } from './logger.ts';

/** Public-key signatures only: `none` and the HMAC algorithms (HS*) are refused before any key is looked up. */
export const TOKEN_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
] as const;

/** Past this age the key set is fetched again on the next token; if that fails, the known keys still serve. */
const KEYS_MAX_AGE_MS = 10 * 60_000;
const FETCH_TIMEOUT_MS = 5000;
const MAX_SUBJECT_LENGTH = 255;

/** What hop maps from a verified token. */
export interface VerifiedToken {
  /** `sub` (or `client_id`): who holds the token. */
  subject: string;
  /** The workspace claim's value. */
  workspace: string;
  /** The scopes claim's values, as the provider wrote them. */
  scopes: string[];
}

export interface TokenVerifier {
  /** The claims of a valid token; throws AppError `unauthorized` (refused) or `unavailable` (provider unreachable). */
  verify(token: string): Promise<VerifiedToken>;
}

export interface TokenVerifierOptions {
  config: OidcConfig;
  /** The clock of `exp`, `nbf`, the cache and the cooldown; tests move it. */
  now: () => Date;
  logger: Logger;
  /** Whether concurrent requests share one fetch of the provider's documents; off on Workers (a promise of another request). */
  shareFetches: boolean;
  fetch?: typeof fetch | undefined;
}

const refused = (detail: string) => new AppError('unauthorized', detail);

/** Why jose refused a token, in words a client can act on (`code` and `claim` are jose's). */
function refusal(err: { code?: unknown; claim?: unknown }): AppError {
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return refused('The token has expired.');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return refused(`The token's signature algorithm is not accepted (only ${TOKEN_ALGORITHMS.join(', ')}).`);
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return refused("The token is signed with a key the provider does not publish.");
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refused("The token's signature is invalid.");
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (err.claim === 'nbf') return refused('The token is not valid yet (nbf).');
      if (err.claim === 'iss') return refused('The token was issued by another issuer.');
      if (err.claim === 'aud') return refused('The token was issued for another audience.');
      return refused(`The token's "${String(err.claim)}" claim is missing or invalid.`);
    default:
      return refused('The token is malformed or invalid.');
  }
}

const stringClaim = (value: unknown) => (typeof value === 'string' && value.length > 0 ? value : undefined);

/** Space-separated (the `scope` claim of RFC 9068), or an array of strings (`scp` and others). */
function scopeList(value: unknown): string[] | undefined {
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  return undefined;
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const { config, now, logger } = options;
  const fetchDocument = options.fetch ?? ((input, init) => fetch(input, init));
  const cooldownMs = config.jwksCooldownS * 1000;

  let jwksUrl = config.jwksUrl;
  let keys: { resolve: ReturnType<typeof createLocalJWKSet>; fetchedAt: number } | undefined;
  let lastAttempt = -Infinity;
  let failing = false;
  let pending: Promise<void> | undefined;

  async function getJson(url: string, what: string): Promise<Record<string, unknown>> {
    // No redirects: a provider's documents are where it says they are.
    const response = await fetchDocument(url, {
      headers: { accept: 'application/json, application/jwk-set+json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`${what} answered ${response.status}`);
    }
    const body: unknown = await response.json();
    if (typeof body !== 'object' || body === null) throw new Error(`${what} is not a JSON object`);
    return body as Record<string, unknown>;
  }

  async function fetchKeys() {
    if (!jwksUrl) {
      const url = `${config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const discovery = await getJson(url, 'the discovery document');
      // OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer it was fetched from.
      if (discovery.issuer !== config.issuer) throw new Error(`the discovery document names another issuer (${String(discovery.issuer)})`);
      const uri = discovery.jwks_uri;
      if (typeof uri !== 'string' || providerUrlProblem(uri)) throw new Error('the discovery document has no usable jwks_uri');
      jwksUrl = uri;
    }
    const set = await getJson(jwksUrl, 'the JWKS');
    keys = { resolve: createLocalJWKSet(set as never), fetchedAt: now().getTime() };
  }

  /** Fetches the keys unless the last attempt is younger than the cooldown: a flood of unknown `kid`s costs one fetch. */
  async function refresh(): Promise<void> {
    if (pending && options.shareFetches) return pending;
    // Without sharing (Workers), a request arriving while the first fetch runs fetches too rather than answer 503.
    const firstLoad = pending !== undefined && !keys;
    if (!firstLoad && now().getTime() - lastAttempt < cooldownMs) return;
    lastAttempt = now().getTime();
    const attempt = fetchKeys().then(
      () => {
        if (failing) logger.log('info', 'oidc provider reachable again', { issuer: config.issuer });
        failing = false;
      },
      (err: unknown) => {
        if (!failing) logger.log('warn', 'oidc provider unreachable', { issuer: config.issuer, error: String(err) });
        failing = true;
      },
    );
    pending = attempt;
    try {
      await attempt;
    } finally {
      if (pending === attempt) pending = undefined;
    }
  }

  function unavailable(): AppError {
    const waitS = Math.max(1, Math.ceil((lastAttempt + cooldownMs - now().getTime()) / 1000));
    return new AppError('unavailable', "The identity provider's keys could not be fetched; retry shortly.", { retryAfterS: waitS });
  }

  async function currentKeys() {
    if (!keys || now().getTime() - keys.fetchedAt > KEYS_MAX_AGE_MS) await refresh();
    if (!keys) throw unavailable();
    return keys;
  }

  async function getKey(header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    const known = await currentKeys();
    try {
      return await known.resolve(header, token);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      // A key the set does not hold: the provider may have rotated. Once per cooldown, ask again.
      const before = keys;
      await refresh();
      if (keys === before) {
        if (failing) throw unavailable();
        throw err;
      }
      return keys!.resolve(header, token);
    }
  }

  return {
    async verify(token) {
      let payload;
      try {
        ({ payload } = await jwtVerify(token, getKey, {
          algorithms: [...TOKEN_ALGORITHMS],
          issuer: config.issuer,
          audience: config.audience,
          clockTolerance: config.clockSkewS,
          currentDate: now(),
          requiredClaims: ['exp'],
        }));
      } catch (err) {
        if (err instanceof AppError) throw err;
        throw refusal(err as { code?: unknown; claim?: unknown });
      }
      const subject = stringClaim(payload.sub) ?? stringClaim(payload.client_id);
      if (!subject || subject.length > MAX_SUBJECT_LENGTH) throw refused('The token has no usable "sub" claim.');
      const workspace = stringClaim(payload[config.workspaceClaim]);
      if (!workspace) throw refused(`The token has no "${config.workspaceClaim}" claim naming a workspace.`);
      const scopes = payload[config.scopesClaim] === undefined ? [] : scopeList(payload[config.scopesClaim]);
      if (!scopes) throw refused(`The token's "${config.scopesClaim}" claim is neither a space-separated string nor a list of strings.`);
      return { subject, workspace, scopes };
    },
  };
}
