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
  /**
   * The workspace's registered domains, read with its API key (one round trip to the database, not two); absent for
   * an access token, whose workspace's domains are read when a rule needs them.
   */
  domains?: readonly string[] | undefined;
}

export interface ServiceContext {
  workspaceId: string;
  actor: { type: 'api_key'; id: string } | { type: 'operator' } | { type: 'cli' };
  requestId: string;
  now: () => Date;
  /** The workspace's registered domains as read when the request was authenticated (Principal.domains), if they were. */
  domains?: readonly string[] | undefined;
}
