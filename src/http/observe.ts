/**
 * Around every request when tracing is on, and around API requests when the runtime keeps scopes: the server span
 * (named by method and route template, continuing an incoming W3C `traceparent`), the scope its work runs in (so
 * database, cache and queue spans find their parent and log lines carry its ids), and on `/v1` answers a
 * `Server-Timing` header with the database and cache time the request waited on. Nothing runs here for a redirect
 * with tracing off.
 */
import { parseTraceparent, SpanKind, type Scope, type ScopeStore, type Tracer } from '../platform/tracing.ts';

type Answer = Response | Promise<Response>;
interface Deferrer {
  waitUntil(work: Promise<unknown>): void;
}

export interface ObserveOptions {
  tracer: Tracer | undefined;
  scopes: ScopeStore | undefined;
  /** The app's routes, to name a span by its template (`/v1/links/:id`), never by the path itself. */
  routes: ReadonlyArray<{ method: string; path: string }>;
}

/** The app's handlers (not middleware), each with the regular expression of its path template. */
export const routePatterns = (routes: ObserveOptions['routes']) =>
  routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => ({
      method: r.method,
      path: r.path,
      regex: new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '[^/]+').replace(/\*/g, '.*')}$`),
    }));

/** The template of the first route matching `method` and `path`, or undefined (a 404). */
export function routeMatcher(routes: ObserveOptions['routes']) {
  const patterns = routePatterns(routes);
  return (method: string, path: string) => {
    const m = method === 'HEAD' ? 'GET' : method;
    return patterns.find((p) => p.method === m && p.regex.test(path))?.path;
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/** Adds the Server-Timing header; a response with immutable headers is copied first. */
function withTiming(res: Response, timing: NonNullable<Scope['timing']>): Response {
  const value = `db;dur=${round(timing.db)}, cache;dur=${round(timing.cache)}`;
  try {
    res.headers.append('server-timing', value);
    return res;
  } catch {
    const copy = new Response(res.body, res);
    copy.headers.append('server-timing', value);
    return copy;
  }
}

/** `observe(request, route, run, ctx)`: runs `run` observed; undefined when there is nothing to observe with. */
export function requestObserver({ tracer, scopes, routes }: ObserveOptions) {
  if (!tracer && !scopes) return undefined;
  const routeOf = routeMatcher(routes);
  return function observe(request: Request, route: string | undefined, run: () => Answer, ctx: Deferrer | undefined): Answer {
    const url = new URL(request.url);
    const api = scopes !== undefined && (url.pathname === '/v1' || url.pathname.startsWith('/v1/'));
    if (!tracer && !api) return run();
    const method = request.method;
    const template = route ?? routeOf(method, url.pathname);
    const span = tracer?.start(template ? `${method} ${template}` : method, {
      kind: SpanKind.server,
      parent: parseTraceparent(request.headers.get('traceparent'), request.headers.get('tracestate')),
      attributes: {
        'http.request.method': method,
        'http.route': template,
        'url.path': url.pathname,
        'url.scheme': url.protocol.slice(0, -1),
        'server.address': url.hostname,
        'user_agent.original': request.headers.get('user-agent') ?? undefined,
      },
    });
    const scope: Scope = { span: span?.context, timing: api ? { db: 0, cache: 0 } : undefined };
    const finish = (res: Response) => {
      if (span) {
        span.set('http.response.status_code', res.status);
        if (res.status >= 500) span.fail();
        span.end();
        // A Worker's isolate may be frozen once the response is out: the export rides on waitUntil.
        if (ctx) {
          try {
            ctx.waitUntil(tracer!.flush());
          } catch {
            // Not a Workers ExecutionContext: the tracer's timer exports.
          }
        }
      }
      return scope.timing ? withTiming(res, scope.timing) : res;
    };
    const answer = scopes ? scopes.run(scope, run) : run();
    return answer instanceof Promise ? answer.then(finish) : finish(answer);
  };
}
