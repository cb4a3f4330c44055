/**
 * Process-local counters, gauges and histograms in the Prometheus text format (served at `/metrics`). Each process
 * (or Worker isolate) counts its own; the scraper sums them, except for the workers of one host (HOP_WORKERS), whose
 * snapshots are rendered together, labelled by worker (`renderSnapshots`). Written by hand rather than with
 * prom-client, which needs node:* modules and so cannot run in the web-standard core (Workers).
 *
 * Cost: `increment` builds its labels' key and looks it up (a Map lookup per call); the redirect path instead holds
 * series bound once (`counter`, `histogram`), whose update is a number addition and, for a histogram, a scan of its
 * few bucket bounds.
 */

export type Labels = Record<string, string>;

type FamilyType = 'counter' | 'gauge' | 'histogram';

/** A counter series bound to its labels: add() costs a number addition. */
export interface CounterSeries {
  add(by?: number): void;
  readonly value: number;
}

/** A histogram series bound to its labels: observe() finds the value's bucket among the family's bounds. */
export interface HistogramSeries {
  observe(value: number): void;
}

interface Cell {
  v: number;
}

class HistogramCell implements HistogramSeries {
  /** Observations per bucket (not cumulative), the last one past every bound (+Inf). */
  readonly counts: number[];
  sum = 0;
  count = 0;
  readonly bounds: readonly number[];
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }
  observe(value: number) {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

class CounterCell implements CounterSeries, Cell {
  v = 0;
  add(by = 1) {
    this.v += by;
  }
  get value() {
    return this.v;
  }
}

interface Family {
  help: string;
  type: FamilyType;
  series: Map<string, Cell>;
  /** Histograms only: the buckets' upper bounds, increasing, and each label set's observations. */
  bounds?: readonly number[];
  histograms?: Map<string, HistogramCell>;
}

/** Buckets for request and database latencies, in seconds: fine where the redirect's objective lies (tens of ms). */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface Metrics {
  /** Adds `by` (default 1) to a counter; its name must end in `_total`. */
  increment(name: string, help: string, labels?: Labels, by?: number): void;
  /** Sets a gauge. */
  set(name: string, help: string, labels: Labels, value: number): void;
  /** The current value of one counter or gauge series (tests, health checks). */
  value(name: string, labels?: Labels): number;
  /** A counter series bound once, for paths where even a Map lookup per call would show. */
  counter(name: string, help: string, labels?: Labels): CounterSeries;
  /** A histogram series bound once; every series of a family shares the family's first `bounds` (seconds, increasing). */
  histogram(name: string, help: string, bounds: readonly number[], labels?: Labels): HistogramSeries;
  /**
   * Series read only when rendered: for counts kept as plain numbers by code on the redirect path, where even a
   * Map lookup per request would show.
   */
  collect(name: string, help: string, type: 'counter' | 'gauge', read: () => Array<[Labels, number]>): void;
  /** Every family in the Prometheus text exposition format 0.0.4. */
  render(): string;
  /** Every family as data (collectors read now), to be rendered with other processes' (renderSnapshots). */
  snapshot(): MetricFamily[];
}

/**
 * One family as data: samples are `[rendered labels, value]`, or `[rendered labels, value, suffix]` for a
 * histogram's `_bucket` (its labels end with `le`), `_sum` and `_count`. Plain data, so that it crosses IPC.
 */
export interface MetricFamily {
  name: string;
  help: string;
  type: FamilyType;
  series: Array<[string, number] | [string, number, string]>;
}

const escapeLabel = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"');
const escapeHelp = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');

/** A sample value as the text format writes it. */
export const formatValue = (v: number) => (v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

function seriesKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const names = Object.keys(labels).sort();
  return names.map((n) => `${n}="${escapeLabel(labels[n]!)}"`).join(',');
}

const join = (a: string, b: string) => (a && b ? `${a},${b}` : a || b);

function histogramSamples(key: string, h: HistogramCell, out: MetricFamily['series']) {
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i]!;
    out.push([join(key, `le="${formatValue(h.bounds[i]!)}"`), cumulative, '_bucket']);
  }
  out.push([join(key, 'le="+Inf"'), h.count, '_bucket'], [key, h.sum, '_sum'], [key, h.count, '_count']);
}

export function createMetrics(): Metrics {
  const families = new Map<string, Family>();
  const collectors: Array<{ name: string; help: string; type: 'counter' | 'gauge'; read: () => Array<[Labels, number]> }> = [];
  const family = (name: string, help: string, type: FamilyType) => {
    let f = families.get(name);
    if (!f) {
      f = { help, type, series: new Map() };
      families.set(name, f);
    }
    return f;
  };
  const cell = (f: Family, key: string) => {
    let c = f.series.get(key);
    if (!c) f.series.set(key, (c = new CounterCell()));
    return c;
  };
  const snapshot = (): MetricFamily[] => {
    for (const c of collectors) {
      const f = family(c.name, c.help, c.type);
      for (const [labels, value] of c.read()) cell(f, seriesKey(labels)).v = value;
    }
    return [...families].map(([name, f]) => {
      const series: MetricFamily['series'] = [];
      if (f.histograms) for (const [key, h] of f.histograms) histogramSamples(key, h, series);
      else for (const [key, c] of f.series) series.push([key, c.v]);
      return { name, help: f.help, type: f.type, series };
    });
  };
  return {
    increment(name, help, labels, by = 1) {
      cell(family(name, help, 'counter'), seriesKey(labels)).v += by;
    },
    set(name, help, labels, value) {
      cell(family(name, help, 'gauge'), seriesKey(labels)).v = value;
    },
    value(name, labels) {
      return families.get(name)?.series.get(seriesKey(labels))?.v ?? 0;
    },
    counter(name, help, labels) {
      return cell(family(name, help, 'counter'), seriesKey(labels)) as CounterCell;
    },
    histogram(name, help, bounds, labels) {
      const f = family(name, help, 'histogram');
      f.bounds ??= bounds;
      f.histograms ??= new Map();
      const key = seriesKey(labels);
      let h = f.histograms.get(key);
      if (!h) f.histograms.set(key, (h = new HistogramCell(f.bounds)));
      return h;
    },
    collect(name, help, type, read) {
      collectors.push({ name, help, type, read });
    },
    render: () => renderSnapshots([{ labels: undefined, families: snapshot() }]),
    snapshot,
  };
}

/**
 * Several processes' snapshots as one exposition: each family once, every series with its process's labels
 * (`worker="2"`) in front of its own. A histogram's samples stay together per process, buckets in order, so each
 * worker's histogram is whole; Prometheus sums them across workers like any other series.
 */
export function renderSnapshots(snapshots: Array<{ labels: Labels | undefined; families: MetricFamily[] }>): string {
  const merged = new Map<string, { help: string; type: string; lines: string[] }>();
  for (const { labels, families } of snapshots) {
    const prefix = seriesKey(labels);
    for (const f of families) {
      let m = merged.get(f.name);
      if (!m) merged.set(f.name, (m = { help: f.help, type: f.type, lines: [] }));
      for (const [key, value, suffix] of f.series) {
        const all = join(prefix, key);
        m.lines.push(`${f.name}${suffix ?? ''}${all ? `{${all}}` : ''} ${formatValue(value)}`);
      }
    }
  }
  const lines: string[] = [];
  for (const [name, m] of merged) lines.push(`# HELP ${name} ${escapeHelp(m.help)}`, `# TYPE ${name} ${m.type}`, ...m.lines);
  return lines.join('\n') + '\n';
}
