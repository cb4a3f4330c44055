import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/platform/metrics.ts';

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
});
