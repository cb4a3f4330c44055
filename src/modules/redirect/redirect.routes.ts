/**
 * `GET|HEAD /{slug}` on any short-link host, the HTTP half of the redirect: the host and slug from the request, the
 * visit handed to the redirect service (which applies limits, decides and records the click), and its outcome as a
 * response. Unknown slugs answer 404 problem+json, or a small HTML page when the client prefers text/html; exhausted
 * links 410 the same way, and a client over its rate limits 429.
 */
import { Hono, type Context } from 'hono';
import { AppError } from '../../errors.ts';
import type { AppEnv } from '../../http/env.ts';
import { rateLimitHeaders, type RateLimits } from '../../http/middleware/rate-limit.ts';
import type { RequestBookkeeping } from '../../http/middleware/request-context.ts';
import type { RouteMetrics } from '../../http/metrics.ts';
import { errorResponse, problemResponse } from '../../http/problem.ts';
import type { Logger } from '../../platform/logger.ts';
import { canonicalHost } from '../hosts.ts';
import type { RateVerdict } from '../../platform/ratelimit/ratelimit.ts';
import type { RedirectOutcome, RedirectService, RedirectVisit, VisitOutcome } from './redirect.service.ts';

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
  /** The header carrying the visitor's country, when an edge in front sets one (HOP_GEO_HEADER). */
  geoHeader: string | undefined;
  now: () => Date;
  /** Request id and log, kept here rather than by middleware (see request-context.ts). */
  bookkeeping: RequestBookkeeping;
  logger: Logger;
  /** Whose counter a request is, and the 429 of a refusal; none: no limits (the service holds the rules). */
  limits?: RateLimits | undefined;
  /** The request metrics of the redirect's route (`/:slug`), bound once; none: not counted. */
  metrics?: RouteMetrics | undefined;
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
 * A visit as the redirect service reads it, over the raw Request. A class, so that its lazy accessors are methods
 * on one prototype rather than closures made per click (measurable at this rate).
 */
class HttpVisit implements RedirectVisit {
  readonly search: string;
  readonly head: boolean;
  private readonly req: Request;
  private readonly env: unknown;
  /** Keeps background work alive past the response: Workers only (a field, not a method: it is passed on unbound). */
  readonly defer: ((work: Promise<unknown>) => void) | undefined;
  private readonly geoHeader: string | undefined;
  private readonly limits: RateLimits | undefined;
  readonly host: string;
  readonly slug: string;
  readonly now: Date;

  constructor(req: Request, env: unknown, ctx: Deferrer | undefined, host: string, slug: string, now: Date, geoHeader: string | undefined, limits: RateLimits | undefined) {
    this.req = req;
    this.env = env;
    this.defer = ctx && ((work) => ctx.waitUntil(work));
    this.host = host;
    this.slug = slug;
    this.now = now;
    this.geoHeader = geoHeader;
    this.limits = limits;
    const url = req.url;
    const query = url.indexOf('?');
    this.search = query === -1 ? '' : url.slice(query);
    this.head = req.method === 'HEAD';
  }
  // Read only when needed (device or geo targeting, a click, a limit): a header read is not free at this rate.
  userAgent() {
    return this.req.headers.get('user-agent') ?? undefined;
  }
  country() {
    return this.geoHeader ? (this.req.headers.get(this.geoHeader) ?? undefined) : undefined;
  }
  referer() {
    return this.req.headers.get('referer') ?? undefined;
  }
  client() {
    return this.limits!.client(this.req, this.env);
  }
}

/**
 * The redirect as a function of the raw Request, answered before Hono's router (`match`, then `handle`): on the
 * hottest path, routing, a Context and its request wrapper are a measurable share of a cached redirect's cost
 * (docs/perf-history.md). The same handler is registered as a route, for the OpenAPI document and `Allow`.
 */
export function redirectRoutes(service: RedirectService, { geoHeader, now, bookkeeping, logger, limits, metrics }: RedirectRouteOptions) {
  /** Logs the answer (sampled), counts it and returns it. */
  const answered = (v: Books, res: Response) => {
    bookkeeping.record(v.requestId, v.req.method, `/${v.slug}`, res.status, v.startedAt);
    metrics?.record(v.req.method, res.status, v.startedAt, res);
    return res;
  };
  /** A fault (the database, or a rate-limit store in closed mode) as problem+json. */
  const failed = (v: Books, err: unknown) =>
    answered(v, errorResponse(logger, err, { requestId: v.requestId, method: v.req.method, path: `/${v.slug}` }));

  /** `env` is the runtime's (Node: the socket, Bun: the server), for the client's address. */
  function handle(req: Request, slug: string, env: unknown, ctx: Deferrer | undefined): Response | Promise<Response> {
    const requestId = bookkeeping.requestId(req);
    const startedAt = performance.now();
    const books: Books = { req, slug, requestId, startedAt };
    const host = requestHost(req.headers.get('host'), req.url);
    if (host === null) {
      return answered(books, problemResponse(new AppError('bad_request', 'The Host header must name one host.'), requestId, req.method));
    }
    const visit = new HttpVisit(req, env, ctx, host, slug, now(), geoHeader, limits);
    const finish = (o: VisitOutcome) =>
      answered(books, o.kind === 'limited' ? refused(req, requestId, limits!, o.verdict) : respond(req, requestId, o));
    try {
      const outcome = service.visit(visit);
      // No await when the service answered synchronously: a promise per click is measurable at this rate.
      return outcome instanceof Promise ? outcome.then(finish, (err: unknown) => failed(books, err)) : finish(outcome);
    } catch (err) {
      return failed(books, err);
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
function refused(req: Request, requestId: string, limits: RateLimits, verdict: RateVerdict): Response {
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
