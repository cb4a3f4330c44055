/**
 * The plain context every service receives instead of an HTTP context: which workspace, who acts, the request id
 * for logs, and the clock (injected so tests can move time).
 */
export interface ServiceContext {
  workspaceId: string;
  actor: { type: 'api_key'; id: string } | { type: 'operator' } | { type: 'cli' };
  requestId: string;
  now: () => Date;
}
