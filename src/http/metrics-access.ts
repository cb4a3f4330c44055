/**
 * Who may read `/metrics` on the main port. Metrics are for operators, so by default nobody outside the machine:
 * - with a separate listener (HOP_METRICS_ADDR, Node and Bun), nobody here: the runtime serves them there;
 * - with HOP_METRICS_TOKEN, a request carrying `Authorization: Bearer <token>` (compared in constant time);
 * - with neither, a client on this machine: a loopback peer whose request did not come through a proxy (it carries
 *   none of the forwarding headers, nor the configured client-address header).
 * And never on a host that a workspace registered as its short-link domain, whatever the token or the peer.
 * A refusal is the same 404 as any unknown path, so a stranger cannot tell that metrics are there.
 */
import { timingSafeEqual } from '../platform/crypto.ts';

export interface MetricsAccessOptions {
  /** HOP_METRICS_TOKEN. */
  token: string | undefined;
  /** HOP_METRICS_ADDR is set: metrics are served on that listener only. */
  separate: boolean;
  /** The connection's peer address (Node: the socket; Bun: the server; Workers: cf-connecting-ip). */
  clientIp: ((request: Request, env: unknown) => string | undefined) | undefined;
  /** HOP_CLIENT_IP_HEADER: the header a trusted proxy in front sets. */
  clientIpHeader: string | undefined;
  /** Whether the request's Host is a domain a workspace registered (or cannot be told: then it is refused). */
  workspaceHost(request: Request): boolean | Promise<boolean>;
}

const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'];

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6. */
export const isLoopback = (address: string | undefined) =>
  !!address && (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'));

export type MetricsAccess = (request: Request, env: unknown) => Promise<boolean>;

export function metricsAccess(options: MetricsAccessOptions): MetricsAccess {
  const { token, separate, clientIpHeader } = options;
  const proxyHeaders = clientIpHeader ? [...PROXY_HEADERS, clientIpHeader] : PROXY_HEADERS;
  return async function mayReadMetrics(request, env) {
    if (separate) return false;
    let onWorkspaceHost: boolean;
    try {
      onWorkspaceHost = await options.workspaceHost(request);
    } catch {
      onWorkspaceHost = true;
    }
    if (onWorkspaceHost) return false;
    if (token !== undefined) {
      const auth = request.headers.get('authorization');
      if (!auth || !/^bearer /i.test(auth)) return false;
      return timingSafeEqual(auth.slice(7).trim(), token);
    }
    if (proxyHeaders.some((h) => request.headers.has(h))) return false;
    return isLoopback(options.clientIp?.(request, env));
  };
}
