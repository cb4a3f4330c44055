/**
 * Shards: where a link lives when HOP_DATABASE_SHARDS lists several databases. (domain, slug) hashes into one of a
 * fixed number of buckets; the bucket map (table `shard_buckets` on the control database) assigns each bucket to a
 * shard, so that moving data later moves buckets, never rehashes links. Also the scatter-gather helper of
 * workspace-wide reads: every shard answers within the deadline, or the whole read fails as unavailable.
 */
import { AppError } from '../../errors.ts';
import { withDeadline } from '../resilience.ts';
import type { Database } from './client.ts';

/** Buckets of the hash: fixed for ever (changing it would move every link), and more than shards will ever be. */
export const BUCKETS = 1024;

/**
 * The bucket of a link's address: FNV-1a (32 bits) of `domain/slug` as UTF-8, modulo BUCKETS. Stable across
 * runtimes and releases (a changed hash would strand every link on the wrong shard); the domain is lowercase and the
 * slug case-sensitive, as stored.
 */
export function bucketOf(domain: string, slug: string): number {
  return fnv1a32(`${domain}/${slug}`) % BUCKETS;
}

/** FNV-1a, 32 bits, of a string's UTF-8 bytes. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
const encoder = new TextEncoder();

/** The map of a fresh deployment: buckets dealt to the shards in contiguous ranges (bucket b → shard ⌊b·n/B⌋). */
export function defaultBucketMap(shards: number): number[] {
  return Array.from({ length: BUCKETS }, (_, b) => Math.floor((b * shards) / BUCKETS));
}

export interface ShardSet {
  control: Database;
  /** The shards the map's indices name. Live: a resharding's layout reload (shard-layout.ts) changes it in place. */
  shards: readonly Database[];
  /** bucket → shard index (loaded from the control database). Live, like `shards`. */
  map: readonly number[];
  /** The shard holding a bucket. */
  ofBucket(bucket: number): Database;
  /** The shard of a link's address. */
  of(domain: string, slug: string): Database;
  /**
   * Where a shard's reads that may lag go (redirect lookups, statistics): its replicas with the primary behind them
   * (replicas.ts), or the primary itself when it has none. Writes and reads that must see them use the shard.
   */
  readerOf(shard: Database): Database;
  /** Each primary's read replicas (HOP_DATABASE_SHARDS `primary|replica|...`), as opened; none without. */
  replicas: ReadonlyMap<Database, readonly Database[]>;
  /** What a resharding tells this process: the frozen buckets and when the layout was last read. */
  state: ShardState;
}

export interface ShardState {
  /** Buckets being moved under a write freeze: their link writes wait, their clicks are held (left to the queue). */
  frozen: Set<number>;
  /** When this process last read the layout (ms); Infinity when nothing watches it (no resharding can happen). */
  checkedAt: number;
}

/** Past this without a layout read, a process no longer trusts its view of frozen buckets for writes. */
export const LAYOUT_POLL_MS = 1000;
export const LAYOUT_STALE_MS = 3 * LAYOUT_POLL_MS;

export function createShardSet(
  control: Database,
  shards: readonly Database[],
  map: readonly number[],
  options: { state?: ShardState; replicas?: ReadonlyMap<Database, readonly Database[]>; readerOf?: (shard: Database) => Database } = {},
): ShardSet {
  if (map.length !== BUCKETS || map.some((s) => !(s >= 0 && s < shards.length))) {
    throw new Error(`the bucket map names a shard that HOP_DATABASE_SHARDS does not list (${shards.length} listed)`);
  }
  const ofBucket = (bucket: number) => shards[map[bucket]!]!;
  return {
    control,
    shards,
    map,
    ofBucket,
    of: (domain, slug) => ofBucket(bucketOf(domain, slug)),
    readerOf: options.readerOf ?? ((shard) => shard),
    replicas: options.replicas ?? new Map(),
    state: options.state ?? { frozen: new Set(), checkedAt: Number.POSITIVE_INFINITY },
  };
}

/**
 * The same shards seen through `wrap` (metering, tracing), following the base set's live list, map and state: the
 * composition root wraps each database once, including the shards a resharding adds later. `reader` makes the read
 * path of a (wrapped) primary that has replicas, once per primary; a shard without replicas is its own reader.
 */
export function deriveShardSet(
  base: ShardSet,
  control: Database,
  wrap: (db: Database) => Database,
  reader?: (primary: Database, replicas: readonly Database[], shardNumber: number) => Database,
): ShardSet {
  const wrapped = new Map<Database, Database>();
  const origin = new Map<Database, Database>();
  const w = (db: Database) => {
    let out = wrapped.get(db);
    if (!out) {
      wrapped.set(db, (out = wrap(db)));
      origin.set(out, db);
    }
    return out;
  };
  const readers = new Map<Database, Database>();
  const readerOf = (shard: Database) => {
    let out = readers.get(shard);
    if (!out) {
      const primary = origin.get(shard) ?? shard;
      const own = base.replicas.get(primary) ?? [];
      out = own.length && reader ? reader(shard, own.map(w), base.shards.indexOf(primary) + 1) : shard;
      readers.set(shard, out);
    }
    return out;
  };
  return {
    control,
    get shards() {
      return base.shards.map(w);
    },
    map: base.map,
    ofBucket: (bucket) => w(base.ofBucket(bucket)),
    of: (domain, slug) => w(base.of(domain, slug)),
    readerOf,
    replicas: base.replicas,
    state: base.state,
  };
}

/** Whether this process may write a bucket now: not frozen, and its view of the freezes fresh. */
export function isWritable(set: ShardSet, bucket: number, now = Date.now()): boolean {
  return !set.state.frozen.has(bucket) && now - set.state.checkedAt <= LAYOUT_STALE_MS;
}

/**
 * Waits (up to `waitMs`) until a bucket may be written, else fails as unavailable (503 with Retry-After): its links
 * are being moved to another shard, or this process cannot read the layout that would tell it.
 */
export async function awaitWritable(set: ShardSet, buckets: readonly number[], waitMs = 2000): Promise<void> {
  const until = Date.now() + waitMs;
  while (!buckets.every((b) => isWritable(set, b))) {
    if (Date.now() >= until) {
      throw new AppError('unavailable', 'These links are being moved between shards; retry shortly.', { retryAfterS: 1 });
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The bucket map as the control database holds it, written on first use: every bucket to a shard, in contiguous
 * ranges. A map naming a shard beyond the list (a shard removed from HOP_DATABASE_SHARDS without moving its
 * buckets) is refused rather than silently misrouting links.
 */
export async function loadBucketMap(control: Database, shardCount: number): Promise<number[]> {
  const read = async () => (await control.client.execute('select bucket, shard from shard_buckets order by bucket')).rows;
  let rows = await read();
  if (rows.length === 0) {
    const fresh = defaultBucketMap(shardCount);
    // One statement, insert-or-ignore: two processes starting together write the same map once.
    const values = fresh.map((s, b) => `(${b}, ${s})`).join(',');
    await control.client.execute(`insert or ignore into shard_buckets (bucket, shard) values ${values}`);
    rows = await read();
  }
  const map = new Array<number>(BUCKETS).fill(-1);
  for (const row of rows) map[Number(row.bucket)] = Number(row.shard);
  return map;
}

export interface ScatterOptions {
  /** Per shard: past it the whole read fails as unavailable. */
  timeoutMs: number;
}

/**
 * Runs `read` on every shard at once and returns their answers in shard order. When one shard fails or misses the
 * deadline the whole read rejects as unavailable (503): a list or a sum missing a shard would be wrong, not partial.
 */
export async function scatter<T>(shards: readonly Database[], read: (db: Database, index: number) => Promise<T>, options: ScatterOptions): Promise<T[]> {
  const unavailable = (index: number, cause?: unknown) =>
    new AppError('unavailable', `Shard ${index + 1} of ${shards.length} did not answer in time; retry shortly.`, { retryAfterS: 1, cause });
  return Promise.all(
    shards.map((db, index) =>
      withDeadline(
        read(db, index).catch((err: unknown) => {
          if (err instanceof AppError && err.code !== 'unavailable') throw err;
          throw unavailable(index, err);
        }),
        options.timeoutMs,
        () => {
          throw unavailable(index);
        },
      ),
    ),
  );
}

/**
 * Merges pages each sorted newest first by (createdAt, id) into the first `limit` rows of their union, in the same
 * order. Each shard was asked for `limit` rows after the same cursor, so the union's first `limit` are among them:
 * the next page starts after the last row returned, on every shard alike, however their rows interleave.
 */
export function mergeNewestFirst<R extends { createdAt: Date; id: string }>(pages: readonly R[][], limit: number): R[] {
  const all = pages.flat();
  all.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return all.slice(0, limit);
}
