// The plan of hop reshard: each shard of the new list gets its share of the buckets, and as few buckets move as can.
import { describe, expect, it } from 'vitest';
import { planMap } from '../../src/platform/db/reshard.ts';
import { BUCKETS, defaultBucketMap } from '../../src/platform/db/shards.ts';

const counts = (map: number[]) => map.reduce<Record<number, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {});
const moved = (a: readonly number[], b: readonly number[]) => a.filter((s, i) => s !== b[i]).length;

describe('planMap', () => {
  it('1 → 3: the old shard keeps its share and only the rest moves', () => {
    const before = defaultBucketMap(1);
    const after = planMap(before, ['a', 'b', 'c'], ['a', 'b', 'c']);
    expect(counts(after)).toEqual({ 0: 342, 1: 341, 2: 341 });
    expect(moved(before, after)).toBe(BUCKETS - 342);
  });

  it('3 → 2: only the removed shard’s buckets move, shared between the two that stay', () => {
    const before = defaultBucketMap(3);
    const after = planMap(before, ['a', 'b', 'c'], ['a', 'c']);
    expect(counts(after)).toEqual({ 0: 512, 2: 512 });
    expect(after.every((s, b) => before[b] === 1 || s === before[b])).toBe(true);
    expect(moved(before, after)).toBe(before.filter((s) => s === 1).length);
  });

  it('onto entirely new shards: every bucket moves, evenly', () => {
    const after = planMap(defaultBucketMap(2), ['a', 'b', 'x', 'y'], ['x', 'y']);
    expect(counts(after)).toEqual({ 2: 512, 3: 512 });
  });
});
