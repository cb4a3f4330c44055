/**
 * The metrics hop exports, by name, with their type and labels: the one list the dashboard and the Prometheus rules
 * are checked against (test/unit/prometheus.test.ts), and that a running hop's /metrics is checked against in turn
 * (test/e2e/prometheus.test.ts). Every series may also carry the scrape's target labels and `worker`.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  type: MetricType;
  labels: readonly string[];
  /** Exported by every process that serves redirects (HOP_ROLE all) once it has served one; others appear only
   * with a component (a shared cache, the supervisor) or after an event (a 5xx, a refusal). */
  always?: true;
}

export const HOP_METRICS: Readonly<Record<string, MetricSpec>> = {
  // HTTP, by route template (the redirect is "/:slug") and status class (2xx..5xx).
  hop_http_requests_total: { type: 'counter', labels: ['route', 'method', 'status_class'], always: true },
  hop_http_request_duration_seconds: { type: 'histogram', labels: ['route', 'method'], always: true },
  hop_http_errors_total: { type: 'counter', labels: ['route', 'type'] },
  // Database calls; outcome ok | error | timeout | busy.
  hop_db_calls_total: { type: 'counter', labels: ['operation', 'outcome'], always: true },
  hop_db_call_duration_seconds: { type: 'histogram', labels: ['operation'], always: true },
  // Shards with read replicas (HOP_DATABASE_SHARDS `primary|replica`): reason open | timeout | error; served_by
  // replica | primary. Shard and replica numbered from 1.
  hop_database_replica_skipped_total: { type: 'counter', labels: ['shard', 'replica', 'reason'] },
  hop_database_replica_reads_total: { type: 'counter', labels: ['shard', 'served_by'] },
  // The link cache (src/platform/cache/): tier memory | shared | all, result hit | miss | coalesced | poisoned | refreshed.
  hop_cache_requests_total: { type: 'counter', labels: ['cache', 'tier', 'result'], always: true },
  hop_cache_circuit_open: { type: 'gauge', labels: ['store'] },
  // The supervisor of `hop serve --workers N` (src/runtimes/cluster.ts): reason crash | retired.
  hop_worker_exits_total: { type: 'counter', labels: ['reason'] },
  hop_ratelimit_limited_total: { type: 'counter', labels: ['policy'] },
  // Clicks: queue memory (a process's buffer) | redis (a producer's buffer) | redis_stream (the stream's backlog, as
  // a consumer reads it); result stored | duplicate | rejected.
  hop_click_queue_depth: { type: 'gauge', labels: ['queue'], always: true },
  hop_click_queue_oldest_age_seconds: { type: 'gauge', labels: ['queue'], always: true },
  hop_click_consumer_lag_seconds: { type: 'gauge', labels: [], always: true },
  hop_clicks_ingested_total: { type: 'counter', labels: ['result'], always: true },
  // The process (src/runtimes/process-metrics.ts; Node and Bun).
  process_cpu_seconds_total: { type: 'counter', labels: [], always: true },
  process_resident_memory_bytes: { type: 'gauge', labels: [], always: true },
  // The event loop's mean delay and its 99th percentile since the previous scrape.
  nodejs_eventloop_lag_seconds: { type: 'gauge', labels: [], always: true },
  nodejs_eventloop_lag_p99_seconds: { type: 'gauge', labels: [], always: true },
  // Open handles (Node) and file descriptors (Linux).
  nodejs_active_resources: { type: 'gauge', labels: [], always: true },
  process_open_fds: { type: 'gauge', labels: [], always: true },
  nodejs_gc_duration_seconds: { type: 'histogram', labels: ['kind'], always: true },
};

/** Labels any series may carry: the scrape's (job, instance, and what the configuration adds) and the worker's. */
export const TARGET_LABELS = ['job', 'instance', 'worker', 'role', 'namespace', 'pod'] as const;

/** Series Prometheus itself makes for every target. */
export const SCRAPE_METRICS: Readonly<Record<string, MetricSpec>> = {
  up: { type: 'gauge', labels: [] },
};

/** The series names a metric appears under in the exposition (a histogram's _bucket, _sum, _count) and its labels. */
export function exportedSeries(): Map<string, readonly string[]> {
  const series = new Map<string, readonly string[]>();
  for (const [name, spec] of Object.entries({ ...HOP_METRICS, ...SCRAPE_METRICS })) {
    if (spec.type !== 'histogram') {
      series.set(name, spec.labels);
      continue;
    }
    series.set(`${name}_bucket`, [...spec.labels, 'le']);
    series.set(`${name}_sum`, spec.labels);
    series.set(`${name}_count`, spec.labels);
  }
  return series;
}
