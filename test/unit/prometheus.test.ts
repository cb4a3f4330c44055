// deploy/prometheus and deploy/grafana, checked offline: promtool accepts the configuration and the rules, and the
// rules' unit tests (deploy/prometheus/tests) pass and fail when a threshold moves; the dashboard is well-formed
// Grafana JSON with its six rows; every series the rules and the dashboard read is one hop exports
// (test/support/hop-metrics.ts) or a recording rule, with labels that exist; every alert has a severity and a
// runbook section in docs/operations.md.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exportedSeries, HOP_METRICS, TARGET_LABELS } from '../support/hop-metrics.ts';
import { promtool } from '../support/prometheus.ts';
import { promtoolAvailable } from '../support/promtool.ts';
import { groupingOf, seriesIn, type SeriesRef } from '../support/promql.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const PROM = join(ROOT, 'deploy/prometheus');
const RULES = join(PROM, 'rules');
const DASHBOARD = join(ROOT, 'deploy/grafana/hop.json');

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const ruleFiles = readdirSync(RULES).filter((f) => f.endsWith('.yml'));
const rules: Rule[] = ruleFiles.flatMap(
  (f) => (parse(readFileSync(join(RULES, f), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules),
);
const recorded = new Map(rules.filter((r) => r.record).map((r) => [r.record!, r]));
const alerts = rules.filter((r) => r.alert);

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string }[];
}
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
};
const panelExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `dashboard "${p.title}"`, expr: t.expr })));

const run = promtoolAvailable();
const tmp: string[] = [];
afterAll(() => tmp.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe.runIf(run)('deploy/prometheus with promtool', () => {
  it('accepts the scrape configuration, with the rule files it loads', () => {
    const r = promtool(['check', 'config', 'prometheus.yml'], PROM);
    expect(r.output, r.output).toContain('SUCCESS: 3 rule files found');
    expect(r.status, r.output).toBe(0);
  });

  it('accepts every rule file', () => {
    const r = promtool(['check', 'rules', ...ruleFiles.map((f) => join(RULES, f))]);
    expect(r.status, r.output).toBe(0);
    expect(r.output.match(/SUCCESS/g)).toHaveLength(ruleFiles.length);
  });

  it('passes the rules’ unit tests: each alert firing and not firing', () => {
    const tests = readdirSync(join(PROM, 'tests')).filter((f) => f.endsWith('.test.yml'));
    expect(tests.length).toBeGreaterThanOrEqual(2);
    const r = promtool(['test', 'rules', ...tests], join(PROM, 'tests'));
    expect(r.status, r.output).toBe(0);
    // Each alert appears in a test, both with an alert expected and with none.
    type Case = { alertname: string; exp_alerts: unknown[] };
    const cases = tests.flatMap((f) =>
      (parse(readFileSync(join(PROM, 'tests', f), 'utf8')) as { tests: { alert_rule_test?: Case[] }[] }).tests.flatMap((t) => t.alert_rule_test ?? []),
    );
    for (const a of alerts) {
      expect(cases.some((c) => c.alertname === a.alert && c.exp_alerts.length > 0), `${a.alert} firing`).toBe(true);
      expect(cases.some((c) => c.alertname === a.alert && c.exp_alerts.length === 0), `${a.alert} not firing`).toBe(true);
    }
  }, 120_000);

  it('fails the unit tests when a burn-rate threshold moves', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-rules-'));
    tmp.push(dir);
    cpSync(PROM, dir, { recursive: true });
    const file = join(dir, 'rules', 'hop-alerts.yml');
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('hop:redirect_error_ratio:rate5m > (14.4 * 0.001)');
    writeFileSync(file, text.replace('hop:redirect_error_ratio:rate5m > (14.4 * 0.001)', 'hop:redirect_error_ratio:rate5m > (30 * 0.001)'));
    const r = promtool(['test', 'rules', 'slo.test.yml'], join(dir, 'tests'));
    expect(r.status, r.output).toBe(1);
    expect(r.output).toContain('alertname: HopRedirectAvailabilityFastBurn');
  }, 120_000);
});

/** The labels a recording rule's series carry: its `by (...)` (le dropped by histogram_quantile), else its inputs'. */
function recordedLabels(name: string): string[] {
  const rule = recorded.get(name)!;
  const by = groupingOf(rule.expr);
  if (by) return by.filter((l) => l !== 'le' || !rule.expr.includes('histogram_quantile'));
  return [...new Set(seriesIn(rule.expr).flatMap((r) => (recorded.has(r.name) ? recordedLabels(r.name) : [])))];
}

function unknownIn(ref: SeriesRef): string | undefined {
  const exported = exportedSeries();
  let known: readonly string[];
  if (recorded.has(ref.name)) known = recordedLabels(ref.name);
  else if (exported.has(ref.name)) known = [...exported.get(ref.name)!, ...TARGET_LABELS];
  else return `${ref.name} is neither a metric hop exports nor a recording rule`;
  const bad = ref.labels.filter((l) => !known.includes(l));
  return bad.length ? `${ref.name} has no label ${bad.join(', ')} (it has ${known.join(', ')})` : undefined;
}

describe('the names the rules and the dashboard use', () => {
  const uses = [
    ...rules.map((r) => ({ where: r.record ?? r.alert!, expr: r.expr })),
    ...panelExprs,
    ...dashboard.templating.list
      .filter((v) => v.type === 'query')
      .map((v) => {
        const q = typeof v.query === 'string' ? v.query : v.query.query;
        return { where: `dashboard variable ${v.name}`, expr: /^label_values\((.*),\s*\w+\)$/.exec(q)![1]! };
      }),
  ];

  it('are metrics hop exports or recording rules, with labels they carry', () => {
    const problems = uses.flatMap(({ where, expr }) => seriesIn(expr).map(unknownIn).filter(Boolean).map((p) => `${where}: ${p}`));
    expect(problems).toEqual([]);
    // The extraction sees what it must: a misspelt name or label is reported.
    expect(seriesIn('sum by (job) (rate(hop_http_request_total{route="/:slug"}[5m]))').map(unknownIn)).toEqual([
      'hop_http_request_total is neither a metric hop exports nor a recording rule',
    ]);
    expect(seriesIn('hop:redirect_requests:rate5m{route="/:slug"} / on(job) hop_db_calls_total{status="ok"}').map(unknownIn)).toEqual([
      'hop:redirect_requests:rate5m has no label route (it has job)',
      expect.stringMatching(/^hop_db_calls_total has no label status /),
    ]);
  });

  it('are named in src/: the metrics the list gives, where a running hop does not always export them', () => {
    // The others are checked against a running hop's /metrics by test/e2e/prometheus.test.ts.
    const src = execFileSync('grep', ['-rhoE', "'(hop|process|nodejs)_[a-z0-9_]+'", join(ROOT, 'src')], { encoding: 'utf8' });
    const named = new Set(src.split('\n').map((l) => l.slice(1, -1)));
    const occasional = Object.entries(HOP_METRICS).filter(([, spec]) => !spec.always).map(([name]) => name);
    expect(occasional.length).toBeGreaterThan(0);
    expect(occasional.filter((n) => !named.has(n))).toEqual([]);
  });

  it('read every recording rule somewhere: an alert, the dashboard or another rule', () => {
    const read = new Set(uses.flatMap(({ expr }) => seriesIn(expr).map((r) => r.name)));
    // The SLI windows the alerts do not read (all are recorded alike) are there for the dashboard and ad-hoc queries.
    const unread = [...recorded.keys()].filter((n) => !read.has(n) && !/^hop:redirect_(requests|errors|error_ratio|slow_ratio):rate/.test(n));
    expect(unread).toEqual([]);
  });
});

describe('the alerts', () => {
  const operations = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const anchors = new Set(
    [...operations.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, '').trim().replace(/ /g, '-')),
  );

  it('each have a severity (page or ticket), a summary, and a runbook section in docs/operations.md', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(12);
    for (const a of alerts) {
      expect(['page', 'ticket'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      const [path, anchor] = a.annotations!.runbook!.split('#');
      expect(path, a.alert).toBe('docs/operations.md');
      expect([...anchors], a.alert).toContain(anchor);
      expect(operations, `docs/operations.md names ${a.alert}`).toContain(a.alert!);
    }
  });

  it('cover both SLOs with the workbook’s burn rates and windows', () => {
    for (const [sli, budget] of [
      ['error_ratio', '0.001'],
      ['slow_ratio', '0.01'],
    ] as const) {
      const exprs = alerts.filter((a) => a.expr.includes(`hop:redirect_${sli}:`)).map((a) => a.expr.replace(/\s+/g, ' '));
      for (const [long, short, factor] of [
        ['1h', '5m', '14.4'],
        ['6h', '30m', '6'],
        ['1d', '2h', '3'],
        ['3d', '6h', '1'],
      ]) {
        const threshold = factor === '1' ? budget : `(${factor} * ${budget})`;
        const want = `hop:redirect_${sli}:rate${long} > ${threshold} and hop:redirect_${sli}:rate${short} > ${threshold}`;
        expect(exprs.some((e) => e.includes(want)), want).toBe(true);
      }
    }
  });
});

describe('deploy/grafana/hop.json', () => {
  it('has the rows redirect RED, API RED, cache, queue, database, process, each with panels', () => {
    expect(dashboard.uid).toBe('hop-overview');
    const rows = dashboard.panels.filter((p) => p.type === 'row');
    expect(rows.map((r) => r.title)).toEqual(['Redirect RED', 'API RED', 'Cache', 'Queue', 'Database', 'Process']);
    const sorted = [...dashboard.panels].sort((a, b) => a.gridPos.y - b.gridPos.y || a.gridPos.x - b.gridPos.x);
    let current = '';
    const perRow = new Map<string, number>();
    for (const p of sorted) {
      if (p.type === 'row') current = p.title;
      else perRow.set(current, (perRow.get(current) ?? 0) + 1);
    }
    for (const r of rows) expect(perRow.get(r.title), r.title).toBeGreaterThanOrEqual(3);
  });

  it('has unique panel ids, panels within the 24-column grid that do not overlap, and a query on each', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
          cells.add(`${i},${j}`);
        }
      }
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.expr, p.title).toMatch(/\S/);
    }
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'job']);
  });
});
