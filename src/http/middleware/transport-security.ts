/**
 * `Strict-Transport-Security` on answers to requests that arrived over TLS: directly (the runtime gives the request
 * an https URL: Node and Bun serving HOP_TLS_CERT, Workers behind Cloudflare's edge), or through a trusted proxy
 * that says so in `X-Forwarded-Proto`. A proxy is trusted only when one is configured (HOP_CLIENT_IP_HEADER): a
 * client reaching hop directly could otherwise claim https over plain HTTP, and browsers ignore the header there
 * anyway. No `includeSubDomains`: the subdomains of hop's host are not hop's to decide.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env.ts';

export const HSTS = 'max-age=31536000';

/** True when the request reached the TLS terminator in front of hop (or hop itself) over https. */
export function arrivedOverTls(request: Request, trustProxy: boolean): boolean {
  if (request.url.startsWith('https:')) return true;
  if (!trustProxy) return false;
  const forwarded = request.headers.get('x-forwarded-proto');
  if (!forwarded) return false;
  // The right-most entry is the one the nearest (trusted) proxy wrote, as for the client's address.
  return forwarded.slice(forwarded.lastIndexOf(',') + 1).trim().toLowerCase() === 'https';
}

export function transportSecurity(trustProxy: boolean): MiddlewareHandler<AppEnv> {
  return async function transportSecurity(c, next) {
    await next();
    if (arrivedOverTls(c.req.raw, trustProxy)) c.res.headers.set('strict-transport-security', HSTS);
  };
}
