// The shards' bucket hash and map, the scatter-gather's failure rule, and the merge of shards' pages under the list
// cursor (src/platform/db/shards.ts, links.service.ts's cursor codec).
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { decodeCursor, encodeCursor } from '../../src/modules/links/links.service.ts';
import type { Database } from '../../src/platform/db/client.ts';
import { BUCKETS, bucketOf, createShardSet, defaultBucketMap, fnv1a32, mergeNewestFirst, scatter } from '../../src/platform/db/shards.ts';

describe('bucketOf', () => {
  it('is FNV-1a 32 of the UTF-8 bytes (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('is domain/slug modulo the bucket count, in range, and stable', () => {
    expect(bucketOf('example.com', 'abc')).toBe(fnv1a32('example.com/abc') % BUCKETS);
    expect(bucketOf('example.com', 'abc')).toBe(bucketOf('example.com', 'abc'));
    for (let i = 0; i < 1000; i++) {
      const b = bucketOf('sho.rt', `s${i}`);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThan(BUCKETS);
    }
  });

  it('keeps the slug case-sensitive and the domain part of the key', () => {
    const pairs = Array.from({ length: 200 }, (_, i) => [bucketOf('a.example', `Slug${i}`), bucketOf('a.example', `slug${i}`)]);
    expect(pairs.filter(([x, y]) => x !== y).length).toBeGreaterThan(150);
    const domains = Array.from({ length: 200 }, (_, i) => [bucketOf('a.example', `s${i}`), bucketOf('b.example', `s${i}`)]);
    expect(domains.filter(([x, y]) => x !== y).length).toBeGreaterThan(150);
  });

  it('spreads 100,000 slugs evenly over 3 shards through the default map', () => {
    const map = defaultBucketMap(3);
    const counts = [0, 0, 0];
    for (let i = 0; i < 100_000; i++) counts[map[bucketOf('localhost', `k${i.toString(36)}`)]!]!++;
    for (const c of counts) expect(Math.abs(c - 100_000 / 3)).toBeLessThan(100_000 * 0.03);
  });
});

describe('the bucket map', () => {
  it('deals buckets to shards in contiguous ranges covering every shard', () => {
    const map = defaultBucketMap(3);
    expect(map).toHaveLength(BUCKETS);
    expect(new Set(map)).toEqual(new Set([0, 1, 2]));
    for (let b = 1; b < BUCKETS; b++) expect(map[b]! - map[b - 1]!).toBeGreaterThanOrEqual(0);
    expect(defaultBucketMap(1).every((s) => s === 0)).toBe(true);
  });

  it('routes an address to the shard its bucket is mapped to, and refuses a map naming a missing shard', () => {
    const dbs = [0, 1, 2].map((i) => ({ i }) as unknown as Database);
    const set = createShardSet(dbs[0]!, dbs, defaultBucketMap(3));
    const b = bucketOf('x.example', 'abc');
    expect(set.of('x.example', 'abc')).toBe(dbs[defaultBucketMap(3)[b]!]);
    expect(() => createShardSet(dbs[0]!, dbs.slice(0, 2), defaultBucketMap(3))).toThrow(/names a shard/);
    expect(() => createShardSet(dbs[0]!, dbs, [0, 1])).toThrow(/names a shard/);
  });
});

describe('scatter', () => {
  const dbs = [0, 1, 2].map((i) => ({ i }) as unknown as Database);

  it('answers every shard in shard order', async () => {
    const answers = await scatter(dbs, async (_db, i) => i * 10, { timeoutMs: 500 });
    expect(answers).toEqual([0, 10, 20]);
  });

  it('fails as unavailable when a shard misses its deadline, never a partial answer', async () => {
    const started = Date.now();
    const err = await scatter(dbs, (_db, i) => (i === 1 ? new Promise<number>(() => {}) : Promise.resolve(i)), { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('unavailable');
    expect((err as AppError).message).toMatch(/Shard 2 of 3/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('fails as unavailable when a shard fails, and passes a refusal of the request through', async () => {
    const failed = await scatter(dbs, async (_db, i) => {
      if (i === 2) throw new TypeError('fetch failed');
      return i;
    }, { timeoutMs: 500 }).catch((e: unknown) => e);
    expect((failed as AppError).code).toBe('unavailable');
    const refused = new AppError('validation', 'bad filter');
    expect(await scatter(dbs, async () => Promise.reject(refused), { timeoutMs: 500 }).catch((e: unknown) => e)).toBe(refused);
  });
});

describe('mergeNewestFirst under the list cursor', () => {
  type Row = { createdAt: Date; id: string; shard: number };
  /** Each shard's rows and its answer to a page: newest first after the cursor, at most `limit`. */
  const page = (rows: Row[], after: { createdAt: Date; id: string } | undefined, limit: number) =>
    rows
      .filter((r) => !after || r.createdAt < after.createdAt || (r.createdAt.getTime() === after.createdAt.getTime() && r.id < after.id))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
      .slice(0, limit);

  it('pages through 3 shards in global (createdAt, id) order, each row once, however they interleave', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      let x = seed;
      const random = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      // Few distinct times: many ties within and across shards, broken by id.
      const shards: Row[][] = [[], [], []];
      for (let i = 0; i < 300; i++) {
        const shard = Math.floor(random() * 3);
        shards[shard]!.push({ createdAt: new Date(1_700_000_000_000 + Math.floor(random() * 40)), id: `lnk_${i.toString(16).padStart(4, '0')}${seed}`, shard });
      }
      const limit = 1 + Math.floor(random() * 20);
      const seen: Row[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 400; pages++) {
        const after = cursor ? decodeCursor(cursor) : undefined;
        // limit + 1, as the service asks: one more row says whether there is a next page.
        const rows = mergeNewestFirst(shards.map((rows) => page(rows, after, limit + 1)), limit + 1);
        const data = rows.slice(0, limit);
        seen.push(...data);
        if (rows.length <= limit) break;
        cursor = encodeCursor(data.at(-1)!);
      }
      const expected = page(shards.flat(), undefined, 1000);
      expect(seen.map((r) => r.id)).toEqual(expected.map((r) => r.id));
      expect(new Set(seen.map((r) => r.id)).size).toBe(300);
    }
  });
});
