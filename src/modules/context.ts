/**
 * The plain context every service receives instead of an HTTP context: which workspace, who acts, the request id
 * for logs, and the clock (injected so tests can move time).
 */
export const scopes = ['links:read', 'links:write', 'analytics:read', 'workspace:admin'] as const;
export type Scope = (typeof scopes)[number];

/** Who is calling: an API key of one workspace with its scopes, or an OIDC access token mapped to the same. */
export interface Principal {
  workspaceId: string;
  /** The API key's id, or `oidc:<sub>` for an access token (its rate-limit counter). */
  keyId: string;
  scopes: readonly Scope[];
}

export interface ServiceContext {
  workspaceId: string;
  actor: { type: 'api_key'; id: string } | { type: 'operator' } | { type: 'cli' };
  requestId: string;
  now: () => Date;
}
