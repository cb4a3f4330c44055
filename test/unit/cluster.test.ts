import { describe, expect, it } from 'vitest';
import { afterCrash } from '../../src/runtimes/cluster.ts';

describe('the supervisor after a crash', () => {
  it('replaces the first crash at once, then waits 100 ms doubling up to 5 s', () => {
    expect([1, 2, 3, 4, 5].map((n) => afterCrash(n, 0, 4))).toEqual([
      { delayMs: 0 },
      { delayMs: 100 },
      { delayMs: 200 },
      { delayMs: 400 },
      { delayMs: 800 },
    ]);
    expect(afterCrash(8, 0, 8)).toEqual({ delayMs: 5000 });
  });

  it('stops the host when workers keep crashing: more than max(5, 2N) in 30 s, or three in a row that never listened', () => {
    expect(afterCrash(5, 0, 2)).toEqual({ delayMs: 800 });
    expect(afterCrash(6, 0, 2)).toEqual({ stop: '6 worker crashes within 30 s' });
    expect(afterCrash(16, 0, 8)).toEqual({ delayMs: 5000 });
    expect(afterCrash(17, 0, 8)).toHaveProperty('stop');
    expect(afterCrash(2, 2, 2)).toEqual({ delayMs: 100 });
    expect(afterCrash(3, 3, 2)).toEqual({ stop: '3 workers in a row exited before listening' });
  });
});
