/** The one Hono environment type shared by every router and middleware of the app. */
import type { RequestIdVariables } from 'hono/request-id';

export const scopes = ['links:read', 'links:write', 'analytics:read', 'workspace:admin'] as const;
export type Scope = (typeof scopes)[number];

/** Who is calling: an API key of one workspace with its scopes. */
export interface Principal {
  workspaceId: string;
  keyId: string;
  scopes: readonly Scope[];
}

export type AppEnv = {
  Variables: RequestIdVariables & { principal: Principal };
};
