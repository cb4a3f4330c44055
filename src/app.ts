/**
 * createApp(deps): the whole hop HTTP application as a Hono app built on web-standard Request/Response.
 * It never listens and builds nothing: the composition root (src/composition/) hands it the services, and the
 * runtime entries in src/runtimes/ serve it.
 */
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import type { Config } from './config.ts';
import { AppError } from './errors.ts';
import { apiKeyAuth } from './http/middleware/auth.ts';
import { apiKeyLimit, authFailureLimit, createRateLimits } from './http/middleware/rate-limit.ts';
import { requestBookkeeping, requestContext } from './http/middleware/request-context.ts';
import { strictBody } from './http/middleware/strict-body.ts';
import { transportSecurity } from './http/middleware/transport-security.ts';
import { errorHandler, HttpError } from './http/problem.ts';
import { createRouter } from './http/router.ts';
import { docsRoutes, landingRoutes } from './modules/docs/docs.routes.ts';
import { healthRoutes } from './modules/health/health.routes.ts';
import { linksRoutes } from './modules/links/links.routes.ts';
import { redirectDocument, redirectHeadDocument } from './modules/redirect/redirect.openapi.ts';
import { redirectRoutes, requestHost } from './modules/redirect/redirect.routes.ts';
import { isLoopbackHost } from './modules/hosts.ts';
import { metricsAccess } from './http/metrics-access.ts';
import { statsOperatorRoutes, statsRoutes } from './modules/stats/stats.routes.ts';
import { operatorRoutes, workspaceRoutes } from './modules/workspaces/workspaces.routes.ts';
import type { Database } from './platform/db/client.ts';
import type { Logger } from './platform/logger.ts';
import type { Metrics } from './platform/metrics.ts';
import type { RateLimiter } from './platform/ratelimit/policies.ts';
import type { RedirectService } from './modules/redirect/redirect.service.ts';
import type { ScopeStore, Tracer } from './platform/tracing.ts';
import { requestObserver, routeMatcher, routePatterns } from './http/observe.ts';
import { requestMetrics } from './http/metrics.ts';
import type { Services } from './composition/root.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  logger: Logger;
  metrics: Metrics;
  /** The clock; tests move it. */
  now: () => Date;
  /** The services of this process (src/composition/root.ts), the redirect's among them. */
  services: Omit<Services, 'redirectLookup'>;
  redirect: RedirectService;
  /** The composed rate limits; undefined with HOP_RATE_LIMIT=off. */
  rateLimiter: RateLimiter | undefined;
  /** True once the process is shutting down: /readyz answers 503 so traffic moves elsewhere. */
  draining?: (() => boolean) | undefined;
  /** The client's address as the runtime sees it (the connection's peer; Workers: cf-connecting-ip). */
  clientIp?: ((request: Request, env: unknown) => string | undefined) | undefined;
  /** /metrics of every worker of this host (HOP_WORKERS); this process's own when not given. */
  hostMetrics?: (() => Promise<string>) | undefined;
  /** What this process serves (HOP_ROLE); `all` by default. Probes and /metrics are served by every role. */
  role?: AppRole | undefined;
  /** The workspace that registered a host as its domain (the cached redirect read): /metrics is never answered there. */
  domainOwner?: ((host: string) => string | undefined | Promise<string | undefined>) | undefined;
  /** /readyz's checks beyond the database's (the shared cache, a remote queue), each rejecting when it fails. */
  readiness?: Record<string, () => Promise<void>> | undefined;
  /** Traces; undefined: tracing off (the default). */
  tracer?: Tracer | undefined;
  /** The runtime's scope store (current span, Server-Timing); undefined where the runtime provides none. */
  scopes?: ScopeStore | undefined;
}

/** `redirect`: short links; `api`: the management API and its documents; `all`: both. */
export type AppRole = 'redirect' | 'api' | 'all';

/** The answer of one role to the other's paths: a 404 that says where they are served. */
const otherRole = (what: string, role: AppRole) =>
  new AppError('not_found', `${what} are not served by this process (HOP_ROLE=${role}); the ${role === 'api' ? 'redirect' : 'api'} role serves them.`);

/** The HTTP app over composed services; call it through composeApp (src/composition/root.ts). */
export function createApp(deps: AppDeps) {
  const { config, db, logger, metrics, now, redirect } = deps;
  const role = deps.role ?? 'all';
  const servesApi = role !== 'redirect';
  const servesRedirects = role !== 'api';
  const limits = createRateLimits(config, deps.rateLimiter, { clientIp: deps.clientIp, metrics });
  const { workspaces, links, idempotency, stats } = deps.services;

  const app = createRouter();

  // Request ids and logs for every path but the redirect's (`GET|HEAD /{slug}`), which keeps the same books itself
  // so that a click runs without middleware (see request-context.ts). Single-segment paths with other methods
  // still get them, for their 405.
  const bookkeeping = requestBookkeeping(logger, config.logSampleRate);
  const context = requestContext(bookkeeping);
  for (const path of ['/', '/v1', '/docs', '/openapi.json', '/livez', '/readyz', '/metrics', '/:first/:second/*']) {
    app.use(path, context);
  }
  app.on(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], '/:slug', context);
  // Security headers protect documents: the API, its reference and the probes. A redirect is a bodyless 3xx that
  // they do nothing for, and eleven headers on every click cost measurable throughput (docs/perf-history.md).
  // Browsers' default referrer policy, not no-referrer: destinations of a short link may see where clicks came from.
  // HSTS only over TLS (transport-security.ts), where secureHeaders would send it over plain HTTP too.
  const security = secureHeaders({ referrerPolicy: 'strict-origin-when-cross-origin', strictTransportSecurity: false });
  const hsts = transportSecurity(config.clientIpHeader !== undefined);
  for (const path of ['/', '/v1/*', '/docs', '/docs/*', '/openapi.json', '/livez', '/readyz', '/metrics']) {
    app.use(path, security);
    app.use(path, hsts);
  }
  const tooLarge = () => new AppError('payload_too_large', `The request body exceeds ${config.bodyLimitBytes} bytes.`);
  // A declared length is refused before anything touches the body: on Node, once the body stream has been opened,
  // the unread rest of a refused body is never drained and the keep-alive connection dies with the next request
  // on it. bodyLimit then counts the bytes of chunked bodies.
  app.use('/v1/*', async (c, next) => {
    const declared = c.req.header('content-length');
    if (declared !== undefined && Number(declared) > config.bodyLimitBytes) throw tooLarge();
    await next();
  });
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: config.bodyLimitBytes,
      onError: () => {
        throw tooLarge();
      },
    }),
  );

  app.route(
    '/',
    healthRoutes({
      // The ping's own deadline is past the probe's, which is the one that names the dependency.
      checks: { database: () => db.ping(2 * config.readyTimeoutMs), ...deps.readiness },
      timeoutMs: config.readyTimeoutMs,
      draining: deps.draining ?? (() => false),
      metrics,
      hostMetrics: deps.hostMetrics,
      metricsAccess: metricsAccess({
        token: config.metrics.token,
        separate: config.metrics.listen !== undefined,
        clientIp: deps.clientIp,
        clientIpHeader: config.clientIpHeader,
        async workspaceHost(request) {
          const host = requestHost(request.headers.get('host'), request.url);
          if (host === null) return true;
          // The service's own host and addresses are no workspace's (a workspace cannot register them).
          if (host === config.defaultDomain || isLoopbackHost(host) || /^[\d.]+$|^\[/.test(host)) return false;
          return (await deps.domainOwner?.(host)) !== undefined;
        },
      }),
    }),
  );

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: config.oidc
      ? `An API key (\`Authorization: Bearer hop_...\`) or an access token (JWT) of the OpenID Connect provider ${config.oidc.issuer}.`
      : 'An API key: `Authorization: Bearer hop_...`',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'operatorToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'The operator token configured as HOP_ADMIN_TOKEN.',
  });

  if (servesApi) {
    if (limits) app.use('/v1/*', authFailureLimit(limits));
    app.route('/', operatorRoutes(workspaces, config.adminToken, now));
    app.route('/', statsOperatorRoutes(stats, config.adminToken, now));
    app.use('/v1/*', apiKeyAuth((token) => workspaces.authenticate(token)));
    if (limits) app.use('/v1/*', apiKeyLimit(limits));
    // Bodies are read and checked only once their sender is known and within its quota (the operator route checks its
    // token first the same way): a large body from a stranger, or from an address refused 429, costs nothing.
    app.use('/v1/*', strictBody());
    app.route('/', workspaceRoutes(workspaces, now));
    app.route('/', linksRoutes(links, idempotency, now));
    app.route('/', statsRoutes(stats, now));

    let document: unknown;
    const openApiDocument = () =>
      (document ??= app.getOpenAPI31Document({
        openapi: '3.1.0',
        info: {
          title: 'hop',
          version: '0.1.0',
          description: 'Short links and click analytics. Errors are RFC 9457 problem+json.',
        },
        servers: [{ url: config.baseUrl }],
        tags: [
          { name: 'Workspaces', description: 'Tenants, created by the operator.' },
          { name: 'API keys', description: 'Scoped keys of a workspace, shown once.' },
          { name: 'Domains', description: 'Short-link hostnames a workspace owns.' },
          { name: 'Links', description: 'Short links and their redirect rules.' },
          { name: 'Statistics', description: 'Clicks counted per hour, raw clicks streamed.' },
          { name: 'Redirect', description: 'The short links themselves.' },
          { name: 'Operations', description: 'Probes and metrics.' },
          { name: 'Documentation', description: 'This document, its reference and the landing page.' },
        ],
      }));
    app.route('/', docsRoutes({ document: openApiDocument, baseUrl: config.baseUrl }));
  } else {
    // The redirect role: the landing page at `/` (a browser on a short-link host), and a clear 404 on the API's
    // paths, which are also kept out of the slugs below.
    app.route('/', landingRoutes());
    const api = () => {
      throw otherRole('The management API and its documents', role);
    };
    app.all('/v1', api).all('/v1/*', api).all('/docs', api).all('/docs/*', api).all('/openapi.json', api);
  }

  app.openAPIRegistry.registerPath(redirectDocument);
  app.openAPIRegistry.registerPath(redirectHeadDocument);
  const http = config.metrics.enabled ? requestMetrics(metrics) : undefined;
  const redirects = redirectRoutes(redirect, { geoHeader: config.geoHeader, now, bookkeeping, logger, limits, metrics: http?.route('/:slug') });
  if (servesRedirects) app.route('/', redirects.routes);
  else {
    // The API role: a short-link request is answered 404 problem+json naming the role that serves it (through the
    // request context, so it is logged like any API answer).
    app.on(['GET', 'HEAD'], '/:slug', context, () => {
      throw otherRole('Short links', role);
    });
  }

  // The request context registered per method above is bookkeeping, not a handler that would allow the method.
  const allowedMethods = methodsByPath(app.routes.filter((r) => r.handler !== context));
  const onError = errorHandler(logger, bookkeeping);
  // Answered, not thrown: Hono lets an error thrown here escape the middleware around it, which would skip its log.
  app.notFound((c) => {
    const allow = allowedMethods(c.req.path);
    const error = allow.length
      ? new HttpError('method_not_allowed', `${c.req.method} is not allowed here; use ${allow.join(', ')}.`, { allow })
      : new AppError('not_found', `Nothing at ${c.req.method} ${c.req.path}.`);
    return onError(error, c);
  });
  app.onError(onError);

  // Redirects are answered before the router (see redirectRoutes); the one-segment paths of other routes are not
  // redirects.
  const reserved = new Set(app.routes.map((r) => r.path.slice(1)).filter((p) => p !== '' && !p.includes('/') && !p.includes(':')));
  const routed = app.fetch;
  // Spans and Server-Timing (observe.ts); with tracing off a redirect goes straight to its handler.
  const observe = requestObserver({ tracer: deps.tracer, scopes: deps.scopes, routes: app.routes });
  const traced = deps.tracer !== undefined;
  // Every answer but the redirect's (which counts its own, redirect.routes.ts) is counted here, by its route template.
  const routeOf = routeMatcher(app.routes.filter((r) => r.handler !== context));
  const metered = (request: Request, env: unknown, executionCtx: Parameters<typeof routed>[2]) => {
    const startedAt = performance.now();
    const answer = observe ? observe(request, undefined, () => routed(request, env, executionCtx), executionCtx) : routed(request, env, executionCtx);
    if (!http) return answer;
    const count = (res: Response) => {
      const url = request.url;
      const start = url.indexOf('/', url.indexOf('//') + 2);
      const path = start === -1 ? '/' : url.slice(start).split(/[?#]/, 1)[0]!;
      http.route(routeOf(request.method, path)).record(request.method, res.status, startedAt, res);
      return res;
    };
    return answer instanceof Promise ? answer.then(count) : count(answer);
  };
  app.fetch = (request, env, executionCtx) => {
    const slug = servesRedirects ? redirects.match(request, reserved) : undefined;
    if (slug !== undefined) {
      return traced
        ? observe!(request, '/:slug', () => redirects.handle(request, slug, env, executionCtx), executionCtx)
        : redirects.handle(request, slug, env, executionCtx);
    }
    return metered(request, env, executionCtx);
  };
  return app;
}

export type App = ReturnType<typeof createApp>;

/** For a 405's `Allow`: the methods that have a handler for a path (HEAD wherever GET is). */
function methodsByPath(routes: ReadonlyArray<{ method: string; path: string }>) {
  const patterns = routePatterns(routes);
  return (path: string): string[] => {
    const methods = new Set(patterns.filter((p) => p.regex.test(path)).map((p) => p.method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
}
