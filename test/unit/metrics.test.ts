import { describe, expect, it } from 'vitest';
import { createMetrics, renderSnapshots } from '../../src/platform/metrics.ts';
import { requestMetrics } from '../../src/http/metrics.ts';
import { problemResponse } from '../../src/http/problem.ts';
import { AppError } from '../../src/errors.ts';

describe('createMetrics', () => {
  it('counts per label set and renders the Prometheus text format with escaped labels', () => {
    const m = createMetrics();
    m.increment('hop_cache_requests_total', 'Link cache lookups.', { tier: 'memory', result: 'hit' });
    m.increment('hop_cache_requests_total', 'Link cache lookups.', { result: 'hit', tier: 'memory' }, 2);
    m.increment('hop_cache_requests_total', 'Link cache lookups.', { tier: 'memory', result: 'miss' });
    m.set('hop_circuit_open', 'Whether a circuit is open.', { service: 'a"b\\c\nd' }, 1);
    expect(m.value('hop_cache_requests_total', { tier: 'memory', result: 'hit' })).toBe(3);
    expect(m.value('hop_nothing_total')).toBe(0);
    expect(m.render()).toBe(
      [
        '# HELP hop_cache_requests_total Link cache lookups.',
        '# TYPE hop_cache_requests_total counter',
        'hop_cache_requests_total{result="hit",tier="memory"} 3',
        'hop_cache_requests_total{result="miss",tier="memory"} 1',
        '# HELP hop_circuit_open Whether a circuit is open.',
        '# TYPE hop_circuit_open gauge',
        'hop_circuit_open{service="a\\"b\\\\c\\nd"} 1',
        '',
      ].join('\n'),
    );
  });

  it('renders several processes as one exposition: each family once, every series labelled by its process', () => {
    const a = createMetrics();
    const b = createMetrics();
    a.increment('hop_x_total', 'X.', { result: 'hit' }, 2);
    b.increment('hop_x_total', 'X.', { result: 'hit' }, 5);
    b.collect('hop_y', 'Y.', 'gauge', () => [[{}, 7]]);
    expect(
      renderSnapshots([
        { labels: { worker: '1' }, families: a.snapshot() },
        { labels: { worker: '2' }, families: b.snapshot() },
      ]),
    ).toBe(
      [
        '# HELP hop_x_total X.',
        '# TYPE hop_x_total counter',
        'hop_x_total{worker="1",result="hit"} 2',
        'hop_x_total{worker="2",result="hit"} 5',
        '# HELP hop_y Y.',
        '# TYPE hop_y gauge',
        'hop_y{worker="2"} 7',
        '',
      ].join('\n'),
    );
  });

  it('renders a histogram: cumulative buckets in order, +Inf, sum and count, a value on a bound counted in its bucket', () => {
    const m = createMetrics();
    const h = m.histogram('hop_x_seconds', 'X time.', [0.25, 0.5, 1], { route: '/:slug' });
    for (const v of [0.125, 0.25, 0.375, 2]) h.observe(v);
    // The same family and labels: the same series, whatever bounds a later caller passes.
    m.histogram('hop_x_seconds', 'X time.', [9], { route: '/:slug' }).observe(0.75);
    expect(m.render()).toBe(
      [
        '# HELP hop_x_seconds X time.',
        '# TYPE hop_x_seconds histogram',
        'hop_x_seconds_bucket{route="/:slug",le="0.25"} 2',
        'hop_x_seconds_bucket{route="/:slug",le="0.5"} 3',
        'hop_x_seconds_bucket{route="/:slug",le="1"} 4',
        'hop_x_seconds_bucket{route="/:slug",le="+Inf"} 5',
        'hop_x_seconds_sum{route="/:slug"} 3.5',
        'hop_x_seconds_count{route="/:slug"} 5',
        '',
      ].join('\n'),
    );
  });

  it('renders the histograms of several processes whole, each labelled by its process, and bound counters', () => {
    const a = createMetrics();
    const b = createMetrics();
    a.histogram('hop_y_seconds', 'Y.', [1]).observe(0.5);
    b.histogram('hop_y_seconds', 'Y.', [1]).observe(3);
    const c = b.counter('hop_z_total', 'Z.', { kind: 'a' });
    c.add();
    c.add(2);
    expect(c.value).toBe(3);
    expect(b.value('hop_z_total', { kind: 'a' })).toBe(3);
    // Snapshots cross IPC as plain data.
    const families = structuredClone(b.snapshot());
    expect(
      renderSnapshots([
        { labels: { worker: '1' }, families: a.snapshot() },
        { labels: { worker: '2' }, families },
      ]),
    ).toBe(
      [
        '# HELP hop_y_seconds Y.',
        '# TYPE hop_y_seconds histogram',
        'hop_y_seconds_bucket{worker="1",le="1"} 1',
        'hop_y_seconds_bucket{worker="1",le="+Inf"} 1',
        'hop_y_seconds_sum{worker="1"} 0.5',
        'hop_y_seconds_count{worker="1"} 1',
        'hop_y_seconds_bucket{worker="2",le="1"} 0',
        'hop_y_seconds_bucket{worker="2",le="+Inf"} 1',
        'hop_y_seconds_sum{worker="2"} 3',
        'hop_y_seconds_count{worker="2"} 1',
        '# HELP hop_z_total Z.',
        '# TYPE hop_z_total counter',
        'hop_z_total{worker="2",kind="a"} 3',
        '',
      ].join('\n'),
    );
  });

  it('escapes HELP text and writes infinities as the format spells them', () => {
    const m = createMetrics();
    m.set('hop_g', 'A\\B\nC', {}, Infinity);
    expect(m.render()).toBe('# HELP hop_g A\\\\B\\nC\n# TYPE hop_g gauge\nhop_g +Inf\n');
  });
});

describe('requestMetrics', () => {
  it('counts answers by route, method and status class, times them, and counts server errors by problem code', () => {
    const m = createMetrics();
    const http = requestMetrics(m);
    const slug = http.route('/:slug');
    const started = performance.now();
    slug.record('GET', 302, started);
    slug.record('GET', 302, started);
    slug.record('HEAD', 404, started);
    slug.record('BREW', 503, started, problemResponse(new AppError('overloaded', 'Full.'), 'req'));
    http.route(undefined).record('GET', 500, started, new Response(null, { status: 500 }));
    const text = m.render();
    expect(text).toContain('hop_http_requests_total{method="GET",route="/:slug",status_class="3xx"} 2');
    expect(text).toContain('hop_http_requests_total{method="HEAD",route="/:slug",status_class="4xx"} 1');
    expect(text).toContain('hop_http_requests_total{method="other",route="/:slug",status_class="5xx"} 1');
    expect(text).toContain('hop_http_request_duration_seconds_count{method="GET",route="/:slug"} 2');
    expect(text).toContain('hop_http_errors_total{route="/:slug",type="overloaded"} 1');
    expect(text).toContain('hop_http_errors_total{route="unmatched",type="status_500"} 1');
    expect(text).not.toContain('status_class="4xx"} 0');
  });
});
