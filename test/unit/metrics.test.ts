import { describe, expect, it } from 'vitest';
import { createMetrics, renderSnapshots } from '../../src/platform/metrics.ts';

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
});
