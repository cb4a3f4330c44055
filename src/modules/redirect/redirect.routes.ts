/**
 * `GET|HEAD /{slug}` on any short-link host: the redirect. Unknown slugs answer 404 problem+json, or a small HTML
 * page when the client prefers text/html; exhausted links 410 the same way, and a client over its rate limits 429.
 */
import { Hono, type Context } from 'hono';
import { AppError } from '../../errors.ts';
import type { AppEnv } from '../../http/env.ts';
import { rateLimitHeaders, type RedirectLimits } from '../../http/middleware/rate-limit.ts';
import type { RequestBookkeeping } from '../../http/middleware/request-context.ts';
import { errorResponse, problemResponse } from '../../http/problem.ts';
import type { Logger } from '../../platform/logger.ts';
import { canonicalHost } from '../hosts.ts';
import type { QueueProducer } from '../../platform/queue/queue.ts';
import { linkClick, orphanVisit, type ClickFacts } from '../clicks/clicks.events.ts';
import type { ClickEvent } from '../clicks/clicks.schemas.ts';
import type { RateVerdict } from '../../platform/ratelimit/ratelimit.ts';
import type { RedirectOutcome, RedirectService } from './redirect.service.ts';

const page = (status: number, title: string, text: string) =>
  `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
  `<title>${status} ${title}</title><body style="font:16px system-ui;margin:4rem auto;max-width:32rem">` +
  `<h1>${title}</h1><p>${text}</p></body></html>`;

const pages = {
  not_found: { status: 404, title: 'Link not found', text: 'There is no short link at this address.' },
  gone: { status: 410, title: 'Link no longer available', text: 'This short link has expired or reached its click limit.' },
  rate_limited: { status: 429, title: 'Too many requests', text: 'Too many requests from your network; try again in a minute.' },
} as const;

/** The request's hostname from its Host header (no port, lower case, no trailing dot), or from its URL. */
const HOST_HEADER = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The request's hostname from its Host header (no port, lower case, no trailing dot), or from its URL; null when
 * the header is not one host (two Host headers arrive joined by a comma, and RFC 9112 wants those refused).
 */
export function requestHost(hostHeader: string | null, url: string): string | null {
  // String slicing instead of new URL(): parsing a URL per click measurably cut redirect throughput.
  const host = hostHeader ?? url.slice(url.indexOf('//') + 2).split('/')[0]!;
  if (!HOST_HEADER.test(host)) return null;
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.lastIndexOf(':');
  return canonicalHost(end > 0 ? host.slice(0, end) : host);
}

const prefersHtml = (accept: string | null) =>
  !!accept && accept.includes('text/html') && !accept.includes('application/json');

export { redirectDocument, redirectHeadDocument } from './redirect.openapi.ts';

export interface RedirectRouteOptions {
  /** The trusted request header carrying the visitor's country. */
  geoHeader: string;
  now: () => Date;
  /** Request id and log, kept here rather than by middleware (see request-context.ts). */
  bookkeeping: RequestBookkeeping;
  logger: Logger;
  /** Where click events go (redirects served, and orphan visits to unknown slugs); none: clicks are not recorded. */
  clicks?: QueueProducer<ClickEvent> | undefined;
  /**
   * Per-address limits (HOP_RATE_LIMIT_REDIRECT, HOP_RATE_LIMIT_NOT_FOUND): every request counts against the first;
   * unknown-slug answers count against the second, and an address past it gets 429 for every slug, known or not,
   * until its window passes. A refused request records no click. None: no limits.
   */
  limits?: RedirectLimits | undefined;
}

/** The part of a Workers ExecutionContext the redirect uses; absent on Node and Bun. */
interface Deferrer {
  waitUntil(work: Promise<unknown>): void;
}

/** What a redirect's log line needs. */
interface Books {
  req: Request;
  slug: string;
  requestId: string;
  startedAt: number;
}

/** One redirect request once its host is known. */
interface Visit extends Books {
  host: string;
  at: Date;
  env: unknown;
  ctx: Deferrer | undefined;
}

/** The single path segment of `url` when it is one (`/abc` → `abc`), else undefined. */
function singleSegment(url: string): string | undefined {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  if (start === -1) return undefined;
  let end = url.indexOf('?', start);
  if (end === -1) end = url.length;
  const hash = url.indexOf('#', start);
  if (hash !== -1 && hash < end) end = hash;
  if (end - start < 2 || url.lastIndexOf('/', end - 1) !== start) return undefined;
  const segment = url.slice(start + 1, end);
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The redirect as a function of the raw Request, answered before Hono's router (`match`, then `handle`): on the
 * hottest path, routing, a Context and its request wrapper are a measurable share of a cached redirect's cost
 * (docs/benchmarks.md). The same handler is registered as a route, for the OpenAPI document and `Allow`.
 */
export function redirectRoutes(service: RedirectService, { geoHeader, now, bookkeeping, logger, clicks, limits }: RedirectRouteOptions) {
  /** Logs the answer (sampled) and returns it. */
  const answered = (v: Books, res: Response) => {
    bookkeeping.record(v.requestId, v.req.method, `/${v.slug}`, res.status, v.startedAt);
    return res;
  };
  /** A fault (the database, or a rate-limit store in closed mode) as problem+json. */
  const failed = (v: Books, err: unknown) =>
    answered(v, errorResponse(logger, err, { requestId: v.requestId, method: v.req.method, path: `/${v.slug}` }));

  /** `env` is the runtime's (Node: the socket, Bun: the server), for the client's address. */
  function handle(req: Request, slug: string, env: unknown, ctx: Deferrer | undefined): Response | Promise<Response> {
    const requestId = bookkeeping.requestId(req);
    const startedAt = performance.now();
    const host = requestHost(req.headers.get('host'), req.url);
    if (host === null) {
      const bad = problemResponse(new AppError('bad_request', 'The Host header must name one host.'), requestId, req.method);
      return answered({ req, slug, requestId, startedAt }, bad);
    }
    const visit: Visit = { req, slug, requestId, startedAt, host, at: now(), env, ctx };
    if (!limits) return lookup(visit);
    const decide = (verdict: RateVerdict | undefined) =>
      verdict ? answered(visit, refused(req, visit.requestId, limits, verdict)) : lookup(visit);
    try {
      // Synchronous with the in-process store, like the lookup.
      const verdict = limits.check(req, env, visit.at.getTime());
      return verdict instanceof Promise ? verdict.then(decide, (err: unknown) => failed(visit, err)) : decide(verdict);
    } catch (err) {
      return failed(visit, err);
    }
  }

  function lookup(v: Visit): Response | Promise<Response> {
    const { req, slug, host, at } = v;
    const url = req.url;
    const query = url.indexOf('?');
    const defer = (work: Promise<unknown>) => v.ctx?.waitUntil(work);
    const finish = (o: RedirectOutcome) => {
      const res = answered(v, respond(req, v.requestId, o));
      if (clicks && o.kind !== 'gone') {
        const facts: ClickFacts = {
          at: at.getTime(),
          userAgent: req.headers.get('user-agent'),
          referer: req.headers.get('referer'),
          country: req.headers.get(geoHeader),
          head: req.method === 'HEAD',
        };
        const pending = clicks.send(o.kind === 'redirect' ? linkClick(o.workspaceId, o.linkId, facts) : orphanVisit(host, slug, facts));
        if (pending) defer(pending);
      }
      // Counted before the 404 leaves, so that this address's next request already sees it.
      const counted = limits && o.kind === 'not_found' ? limits.countNotFound(req, v.env, at.getTime()) : undefined;
      return counted ? counted.then(() => res) : res;
    };
    try {
      const outcome = service.resolve({
        host,
        slug,
        search: query === -1 ? '' : url.slice(query),
        // Read only when the link needs them (device or geo targeting): most links do not.
        userAgent: () => req.headers.get('user-agent') ?? undefined,
        country: () => req.headers.get(geoHeader) ?? undefined,
        now: at,
        defer,
      });
      // No await when the lookup answered synchronously: a promise per click is measurable at this rate.
      return outcome instanceof Promise ? outcome.then(finish, (err: unknown) => failed(v, err)) : finish(outcome);
    } catch (err) {
      return failed(v, err);
    }
  }

  const executionContext = (c: Context<AppEnv>): Deferrer | undefined => {
    try {
      return c.executionCtx;
    } catch {
      return undefined; // Node, Bun: no ExecutionContext.
    }
  };

  return {
    routes: new Hono<AppEnv>().get('/:slug', (c) => handle(c.req.raw, c.req.param('slug'), c.env, executionContext(c))),
    /** The slug when `req` is a redirect (GET or HEAD of one path segment that is not in `reserved`). */
    match(req: Request, reserved: ReadonlySet<string>): string | undefined {
      const method = req.method;
      if (method !== 'GET' && method !== 'HEAD') return undefined;
      const slug = singleSegment(req.url);
      return slug === undefined || reserved.has(slug) ? undefined : slug;
    },
    handle,
  };
}

/** The 429 of the redirect path: problem+json, or the small HTML page when the client prefers text/html. */
function refused(req: Request, requestId: string, limits: RedirectLimits, verdict: RateVerdict): Response {
  const error = limits.refuse(verdict);
  if (!prefersHtml(req.headers.get('accept'))) return problemResponse(error, requestId, req.method);
  const p = pages.rate_limited;
  return new Response(req.method === 'HEAD' ? null : page(p.status, p.title, p.text), {
    status: p.status,
    headers: { ...htmlHeaders(requestId), ...rateLimitHeaders(verdict) },
  });
}

const htmlHeaders = (requestId: string) => ({
  'content-type': 'text/html; charset=UTF-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'x-request-id': requestId,
});

function respond(req: Request, requestId: string, outcome: RedirectOutcome): Response {
  if (outcome.kind === 'redirect') {
    // A Response with a plain header object: a Headers instance would have to be iterated by the Node adapter, a
    // measurable share of a redirect's cost.
    return new Response(null, {
      status: outcome.status,
      headers: {
        location: outcome.location,
        'cache-control': outcome.cacheControl,
        // An explicit length spares Node the chunked encoding and its terminator.
        'content-length': '0',
        'x-request-id': requestId,
      },
    });
  }
  const p = pages[outcome.kind];
  if (prefersHtml(req.headers.get('accept'))) {
    return new Response(req.method === 'HEAD' ? null : page(p.status, p.title, p.text), {
      status: p.status,
      headers: htmlHeaders(requestId),
    });
  }
  const code = outcome.kind === 'gone' ? 'link_gone' : 'not_found';
  return problemResponse(new AppError(code, p.text), requestId, req.method);
}
