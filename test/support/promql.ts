/**
 * The series a PromQL expression reads, with the label names its selectors match on: enough to check that the
 * rules and the dashboard name only metrics and labels that exist (test/unit/prometheus.test.ts). Not a parser:
 * it masks strings, ranges and grouping clauses, then takes every identifier that is not a function or a keyword.
 */
export interface SeriesRef {
  name: string;
  labels: string[];
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2', 'start', 'end']);
const IDENT = /(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*/g;

export function seriesIn(expr: string): SeriesRef[] {
  const refs: SeriesRef[] = [];
  let e = expr
    // Strings (label values, Grafana's $variables inside them), then ranges and subqueries ([5m], [$__rate_interval]).
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\[[^\]]*\]/g, '');
  e = e.replace(/([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}/g, (_, name: string | undefined, matchers: string) => {
    const labels = [...matchers.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]!);
    if (name) refs.push({ name, labels });
    return ' ';
  });
  e = e.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  for (const m of e.matchAll(IDENT)) {
    const after = e.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(m[0])) continue;
    refs.push({ name: m[0], labels: [] });
  }
  return refs;
}

/** The labels of the first `by (...)` clause of `expr`, or undefined when it has none. */
export function groupingOf(expr: string): string[] | undefined {
  const m = /\bby\s*\(([^)]*)\)/.exec(expr);
  return m ? m[1]!.split(',').map((l) => l.trim()).filter(Boolean) : undefined;
}
