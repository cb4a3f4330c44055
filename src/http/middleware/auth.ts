/**
 * Bearer authentication with API keys (or OIDC access tokens), the scope guard each route declares, and the
 * operator token guard. Keys are looked up on every request, so a revoked key fails on the very next one.
 */
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../../errors.ts';
import { HttpError } from '../problem.ts';
import { timingSafeEqual } from '../../platform/crypto.ts';
import type { AppEnv, Principal, Scope } from '../env.ts';

const challenge = (error?: string, extra = '') =>
  `Bearer realm="hop"${error ? `, error="${error}"` : ''}${extra}`;

function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return match?.[1] ?? '';
}

const missing = () =>
  new HttpError('unauthorized', 'Send an API key as "Authorization: Bearer hop_...".', {
    headers: { 'www-authenticate': challenge() },
  });

const invalid = (detail = 'The API key is invalid or has been revoked.') =>
  new HttpError('unauthorized', detail, {
    headers: { 'www-authenticate': challenge('invalid_token') },
  });

/** A refused token's reason (the service's AppError) as the 401 with its challenge; anything else unchanged. */
const challenged = (err: unknown) =>
  err instanceof AppError && !(err instanceof HttpError) && err.code === 'unauthorized' ? invalid(err.message) : err;

export function apiKeyAuth(authenticate: (token: string) => Promise<Principal | null>): MiddlewareHandler<AppEnv> {
  return async function apiKeyAuth(c, next) {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null) throw missing();
    const principal = token ? await authenticate(token).catch((err: unknown) => Promise.reject(challenged(err))) : null;
    if (!principal) throw invalid();
    c.set('principal', principal);
    await next();
  };
}

/** Allows the request when the key has `scope`; `workspace:admin` holds every scope. */
export function requireScope(scope: Scope): MiddlewareHandler<AppEnv> {
  return async function requireScope(c, next) {
    const { scopes } = c.get('principal');
    if (!scopes.includes(scope) && !scopes.includes('workspace:admin')) {
      throw new HttpError('forbidden', `This API key lacks the "${scope}" scope.`, {
        headers: { 'www-authenticate': challenge('insufficient_scope', `, scope="${scope}"`) },
      });
    }
    await next();
  };
}

/** Guards operator routes with `HOP_ADMIN_TOKEN`; without one configured they refuse every request. */
export function operatorAuth(adminToken: string | undefined): MiddlewareHandler<AppEnv> {
  return async function operatorAuth(c, next) {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null) throw missing();
    if (!adminToken || !token || !(await timingSafeEqual(token, adminToken))) {
      throw new HttpError('unauthorized', 'This route needs the operator token (HOP_ADMIN_TOKEN).', {
        headers: { 'www-authenticate': challenge('invalid_token') },
      });
    }
    await next();
  };
}
