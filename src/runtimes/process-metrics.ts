/**
 * The process's own metrics on Node and Bun, under the names Prometheus' client libraries use, registered into the
 * core's registry (src/platform/metrics.ts) as collectors read at each scrape: CPU (`process_cpu_seconds_total`,
 * user and system apart), memory (`process_resident_memory_bytes`, `process_heap_bytes`, `nodejs_heap_size_*`),
 * open file descriptors (`process_open_fds`, Linux) and active handles (`nodejs_active_resources`), the start time,
 * the event loop's delay since the previous scrape (`nodejs_eventloop_lag_seconds` and its percentiles, from
 * perf_hooks' sampler) and garbage collections (`nodejs_gc_duration_seconds{kind}`, a histogram; Bun reports no GC
 * entries to the observer, so it stays empty there). Kept here because node:perf_hooks and node:fs are not for the
 * core.
 */
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import type { Metrics } from '../platform/metrics.ts';

const GC_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5];
/** perf_hooks' NODE_PERFORMANCE_GC_* flags. */
const GC_KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

const started = Date.now() / 1000 - process.uptime();

/** How many file descriptors this process holds (Linux's /proc); undefined elsewhere. */
function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

/** Registers the process collectors on `metrics`; returns what stops the samplers (tests). */
export async function collectProcessMetrics(metrics: Metrics): Promise<() => void> {
  const bun = 'bun' in process.versions;
  // Bun's process.memoryUsage() reports a fixed heap; its engine's own count is the real one.
  const jsc = bun ? ((await import('bun:jsc' as string)) as { heapSize(): number }) : undefined;

  metrics.collect('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', () => {
    const { user, system } = process.cpuUsage();
    return [[{}, (user + system) / 1e6]];
  });
  metrics.collect('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', 'counter', () => [[{}, process.cpuUsage().user / 1e6]]);
  metrics.collect('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', 'counter', () => [[{}, process.cpuUsage().system / 1e6]]);
  metrics.collect('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', () => [[{}, process.memoryUsage.rss()]]);
  metrics.collect('process_heap_bytes', 'Process heap size in bytes.', 'gauge', () => [[{}, jsc ? jsc.heapSize() : process.memoryUsage().heapTotal]]);
  metrics.collect('nodejs_heap_size_used_bytes', 'Process heap size used from the JavaScript engine in bytes.', 'gauge', () => [
    [{}, jsc ? jsc.heapSize() : process.memoryUsage().heapUsed],
  ]);
  metrics.collect('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript objects, in bytes.', 'gauge', () => [
    [{}, process.memoryUsage().external],
  ]);
  metrics.collect('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', () => [[{}, Math.round(started)]]);
  if (openFds() !== undefined) {
    metrics.collect('process_open_fds', 'Number of open file descriptors.', 'gauge', () => [[{}, openFds() ?? 0]]);
  }
  if (typeof process.getActiveResourcesInfo === 'function') {
    metrics.collect('nodejs_active_resources', 'Active resources (handles and requests) keeping the event loop alive.', 'gauge', () => [
      [{}, process.getActiveResourcesInfo().length],
    ]);
  }

  // The event loop's delay, sampled every 10 ms, summarised and reset at each scrape: each figure covers the time
  // since the previous one.
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let lag = { mean: 0, p50: 0, p90: 0, p99: 0, max: 0, min: 0 };
  const read = () => {
    const s = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
    lag = {
      mean: s(delay.mean),
      p50: s(delay.percentile(50)),
      p90: s(delay.percentile(90)),
      p99: s(delay.percentile(99)),
      max: s(delay.max),
      min: s(delay.min),
    };
    delay.reset();
    return lag;
  };
  metrics.collect('nodejs_eventloop_lag_seconds', 'Mean event loop delay since the previous scrape, in seconds.', 'gauge', () => [[{}, read().mean]]);
  for (const [name, field] of [
    ['min', 'min'],
    ['max', 'max'],
    ['p50', 'p50'],
    ['p90', 'p90'],
    ['p99', 'p99'],
  ] as const) {
    metrics.collect(`nodejs_eventloop_lag_${name}_seconds`, `The ${name} event loop delay since the previous scrape, in seconds.`, 'gauge', () => [
      [{}, lag[field]],
    ]);
  }

  const gc = Object.fromEntries(
    Object.entries(GC_KINDS).map(([flag, kind]) => [
      flag,
      metrics.histogram('nodejs_gc_duration_seconds', 'Garbage collection duration by kind (minor, major, incremental, weakcb).', GC_BUCKETS, { kind }),
    ]),
  );
  let observer: PerformanceObserver | undefined;
  try {
    observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
        gc[entry.detail?.kind ?? 0]?.observe(entry.duration / 1000);
      }
    });
    observer.observe({ entryTypes: ['gc'] });
  } catch {
    observer = undefined; // A runtime without GC entries: the histogram stays empty.
  }
  return () => {
    delay.disable();
    observer?.disconnect();
  };
}
