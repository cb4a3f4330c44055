/** The one Hono environment type shared by every router and middleware of the app. */
import type { RequestIdVariables } from 'hono/request-id';
import type { Principal } from '../modules/context.ts';

export type { Principal, Scope } from '../modules/context.ts';

export type AppEnv = {
  Variables: RequestIdVariables & {
    principal: Principal;
    /** performance.now() when the request's books were opened (request-context.ts). */
    requestStart: number;
    /** Set by the request-context middleware, which logs the request after the response, errors included. */
    requestLoggedAfter: boolean;
    /**
     * Set by the idempotency middleware for a keyed request: a digest of (workspace, key, request) from which a
     * create derives the id of what it stores, so a retry of a write whose outcome was unknown finds it.
     */
    idempotencySeed: string | undefined;
  };
};
