/**
 * Request metrics (RED): `hop_http_requests_total{route,method,status_class}`,
 * `hop_http_request_duration_seconds{route,method}` and `hop_http_errors_total{route,type}` for answers of 500 and
 * above, by problem code. `route` is the route's template (`/:slug`, `/v1/links/:id`), `unmatched` for a path no
 * route serves, so the label's values are bounded by the app's routes.
 *
 * The series of each route are bound on first use and kept in arrays indexed by method and status class: recording a
 * redirect is two array reads, a counter addition and a histogram observation, with no label object made per request.
 */
import { LATENCY_BUCKETS, type CounterSeries, type HistogramSeries, type Metrics } from '../platform/metrics.ts';
import { faultType } from './problem.ts';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'other'] as const;
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

function methodIndex(method: string): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'PATCH':
      return 4;
    case 'DELETE':
      return 5;
    case 'OPTIONS':
      return 6;
    default:
      return 7;
  }
}

/** The series of one route, recorded by the answer's method and status. */
export interface RouteMetrics {
  /** Counts the answer and observes its duration from `startedAt` (a performance.now() reading). */
  record(method: string, status: number, startedAt: number, res?: Response): void;
}

export interface RequestMetrics {
  /** The series of a route template (`unmatched` for none); bind once per route, not per request. */
  route(template: string | undefined): RouteMetrics;
}

export function requestMetrics(metrics: Metrics): RequestMetrics {
  const routes = new Map<string, RouteMetrics>();
  function bind(route: string): RouteMetrics {
    const counts: Array<CounterSeries | undefined> = new Array(METHODS.length * CLASSES.length);
    const durations: Array<HistogramSeries | undefined> = new Array(METHODS.length);
    return {
      record(method, status, startedAt, res) {
        const seconds = (performance.now() - startedAt) / 1000;
        const m = methodIndex(method);
        const c = status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : 4;
        const i = m * CLASSES.length + c;
        (counts[i] ??= metrics.counter('hop_http_requests_total', 'HTTP requests answered, by route template, method and status class.', {
          route,
          method: METHODS[m]!,
          status_class: CLASSES[c]!,
        })).add();
        (durations[m] ??= metrics.histogram('hop_http_request_duration_seconds', 'Time from a request to its answer, by route template and method.', LATENCY_BUCKETS, {
          route,
          method: METHODS[m]!,
        })).observe(seconds);
        if (status >= 500) {
          metrics.increment('hop_http_errors_total', 'Answers of 500 and above, by route template and problem type (the error code).', {
            route,
            type: (res && faultType(res)) ?? `status_${status}`,
          });
        }
      },
    };
  }
  return {
    route(template) {
      const name = template ?? 'unmatched';
      let r = routes.get(name);
      if (!r) routes.set(name, (r = bind(name)));
      return r;
    },
  };
}
