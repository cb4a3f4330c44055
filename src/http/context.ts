/** Builds the plain service context from an authenticated request. */
import type { Context } from 'hono';
import type { ServiceContext } from '../modules/context.ts';
import type { AppEnv } from './env.ts';

export function serviceContext(c: Context<AppEnv>, now: () => Date): ServiceContext {
  const principal = c.get('principal');
  return {
    workspaceId: principal.workspaceId,
    actor: { type: 'api_key', id: principal.keyId },
    requestId: c.get('requestId'),
    now,
    domains: principal.domains,
  };
}
