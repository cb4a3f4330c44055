/**
 * Process-local counters and gauges in the Prometheus text format (served at `/metrics`). Each process (or Worker
 * isolate) counts its own; the scraper sums them, except for the workers of one host (HOP_WORKERS), whose snapshots
 * are rendered together, labelled by worker (`renderSnapshots`). A counter bump is a Map lookup, cheap enough for the
 * redirect.
 */

export type Labels = Record<string, string>;

interface Family {
  help: string;
  type: 'counter' | 'gauge';
  series: Map<string, number>;
}

export interface Metrics {
  /** Adds `by` (default 1) to a counter; its name must end in `_total`. */
  increment(name: string, help: string, labels?: Labels, by?: number): void;
  /** Sets a gauge. */
  set(name: string, help: string, labels: Labels, value: number): void;
  /** The current value of one series (tests, health checks). */
  value(name: string, labels?: Labels): number;
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

/** One family as data: series are `[rendered labels, value]`. */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  series: Array<[string, number]>;
}

const escapeLabel = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"');

function seriesKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const names = Object.keys(labels).sort();
  return names.map((n) => `${n}="${escapeLabel(labels[n]!)}"`).join(',');
}

export function createMetrics(): Metrics {
  const families = new Map<string, Family>();
  const collectors: Array<{ name: string; help: string; type: Family['type']; read: () => Array<[Labels, number]> }> = [];
  const family = (name: string, help: string, type: Family['type']) => {
    let f = families.get(name);
    if (!f) {
      f = { help, type, series: new Map() };
      families.set(name, f);
    }
    return f;
  };
  const snapshot = (): MetricFamily[] => {
    for (const c of collectors) {
      const series = family(c.name, c.help, c.type).series;
      for (const [labels, value] of c.read()) series.set(seriesKey(labels), value);
    }
    return [...families].map(([name, f]) => ({ name, help: f.help, type: f.type, series: [...f.series] }));
  };
  return {
    increment(name, help, labels, by = 1) {
      const series = family(name, help, 'counter').series;
      const key = seriesKey(labels);
      series.set(key, (series.get(key) ?? 0) + by);
    },
    set(name, help, labels, value) {
      family(name, help, 'gauge').series.set(seriesKey(labels), value);
    },
    value(name, labels) {
      return families.get(name)?.series.get(seriesKey(labels)) ?? 0;
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
 * (`worker="2"`) in front of its own.
 */
export function renderSnapshots(snapshots: Array<{ labels: Labels | undefined; families: MetricFamily[] }>): string {
  const merged = new Map<string, { help: string; type: string; lines: string[] }>();
  for (const { labels, families } of snapshots) {
    const prefix = seriesKey(labels);
    for (const f of families) {
      let m = merged.get(f.name);
      if (!m) merged.set(f.name, (m = { help: f.help, type: f.type, lines: [] }));
      for (const [key, value] of f.series) {
        const all = [prefix, key].filter(Boolean).join(',');
        m.lines.push(`${f.name}${all ? `{${all}}` : ''} ${value}`);
      }
    }
  }
  const lines: string[] = [];
  for (const [name, m] of merged) lines.push(`# HELP ${name} ${m.help}`, `# TYPE ${name} ${m.type}`, ...m.lines);
  return lines.join('\n') + '\n';
}
