/**
 * A read-through cache over two tiers: the in-process LRU (lru.ts), then the shared store (shared.ts), then the
 * loader (the database). A first-tier hit answers synchronously; concurrent misses of one key share one trip to the
 * shared tier and the loader (single flight). "Not found" is cached too, briefly, so unknown keys cannot hammer the
 * database. Values read from the shared tier are validated by `decode`: a poisoned or foreign entry is deleted and
 * the loader answers instead; it is never served.
 */
import type { Logger } from '../logger.ts';
import type { Labels, Metrics } from '../metrics.ts';
import type { Lru } from './lru.ts';
import { TOMBSTONE, type GuardedStore } from './shared.ts';

/** How a value travels through the shared tier; `decode` answers undefined for anything it does not trust. */
export interface Codec<V> {
  encode(value: V): string;
  decode(raw: string): V | undefined;
  /** Approximate bytes in memory, for the first tier's byte bound. */
  size(value: V): number;
}

export interface TieredCacheOptions<V> {
  /** Names the cache in metrics and prefixes its shared keys. */
  name: string;
  l1: Lru<V | null>;
  shared?: GuardedStore | undefined;
  codec: Codec<V>;
  /** First-tier lifetime of a value (may depend on it), and of "not found". */
  ttlMs(value: V): number;
  negativeTtlMs: number;
  sharedTtlS: number;
  negativeSharedTtlS: number;
  /** How long an invalidated key refuses fills on the shared tier: longer than any database read can take. */
  tombstoneTtlS: number;
  /**
   * Share one load between concurrent misses of a key. Off on Workers: workerd cancels a request's I/O when that
   * request ends, so another request must not wait on it.
   */
  singleFlight: boolean;
  logger: Logger;
  metrics: Metrics;
  /** Where a value's refresh point falls in its window (0 to 1); Math.random unless a test fixes it. */
  random?: () => number;
}

/** Keeps a background write alive past the response where the platform needs telling (waitUntil on Workers). */
export type Defer = (work: Promise<unknown>) => void;

export interface TieredCache<V> {
  /** The value, null when the loader knows no such key; synchronous on a first-tier hit or a synchronous loader. */
  get(key: string, load: () => V | undefined | Promise<V | undefined>, defer?: Defer): V | null | Promise<V | null>;
  /**
   * Drops the keys from this process's first tier at once, then from the shared tier; never rejects (a shared-tier
   * failure is logged and retried by the guard).
   */
  invalidate(keys: string[]): Promise<void>;
  /** Drops the keys from this process's first tier only: another process changed them and told the shared tier. */
  forget(keys: string[]): void;
}

const NEGATIVE = '-';
/**
 * The window of a value's first-tier life in which its refresh point falls, at random (see refreshAhead): values
 * loaded together (a process's first seconds, a burst of misses) would otherwise all be read again together, once
 * per lifetime, and that burst of reads queued every other call to a remote database behind it.
 */
const REFRESH_FROM = 0.5;
const REFRESH_TO = 0.8;
const NEGATIVE_BYTES = 64;

export function createTieredCache<V>(options: TieredCacheOptions<V>): TieredCache<V> {
  const { name, l1, shared, codec, logger } = options;
  const inflight = new Map<string, Promise<V | null>>();
  /*
   * Loads in flight per key, and how many invalidations of that key they have lived through: a load that began
   * before its key changed may hold the old value, so it is answered but not kept. Per key, not one counter for the
   * cache: with one counter, every create or delete anywhere threw away every load in flight, and under write
   * traffic the cache of a remote database never filled (each redirect read the database again).
   */
  const loading = new Map<string, { loads: number; epoch: number }>();
  const begin = (key: string) => {
    let entry = loading.get(key);
    if (!entry) loading.set(key, (entry = { loads: 0, epoch: 0 }));
    entry.loads += 1;
    const since = entry.epoch;
    const current = entry;
    let ended = false;
    // True when the key was not invalidated since the load began; ends the load (once).
    return () => {
      if (!ended) {
        ended = true;
        if (--current.loads === 0 && loading.get(key) === current) loading.delete(key);
      }
      return current.epoch === since;
    };
  };
  const counts = { memoryHit: 0, sharedHit: 0, miss: 0, coalesced: 0, poisoned: 0, refreshed: 0 };
  /*
   * A hit past a value's refresh point (between half and four fifths of its first-tier life) loads a fresh copy in
   * the background, so a key in steady use is never a miss: without it each hot link made one redirect wait for the
   * database every HOP_CACHE_TTL_S. With single flight only (a Worker's I/O ends with its request).
   */
  const refreshAhead = options.singleFlight;
  const random = options.random ?? Math.random;
  const refreshPoint = (ttl: number) => ttl * (REFRESH_FROM + (REFRESH_TO - REFRESH_FROM) * random());
  // Set by the first tier during a hit that is due (one stable function: no closure per hit on the redirect's path).
  let due = false;
  const markDue = () => {
    due = true;
  };
  // Per tier, its hits and misses (a tier's hit ratio is hit / (hit + miss)); `all`: lookups no tier answered (the
  // database was read) and those that waited for another's. Misses per tier are derived when scraped, not counted.
  options.metrics.collect('hop_cache_requests_total', 'Cache lookups by tier (memory, shared; all: every tier) and result.', 'counter', () => [
    [{ cache: name, tier: 'memory', result: 'hit' }, counts.memoryHit],
    [{ cache: name, tier: 'memory', result: 'miss' }, counts.sharedHit + counts.miss + counts.coalesced],
    [{ cache: name, tier: 'shared', result: 'hit' }, counts.sharedHit],
    ...(shared ? [[{ cache: name, tier: 'shared', result: 'miss' }, counts.miss] as [Labels, number]] : []),
    [{ cache: name, tier: 'all', result: 'miss' }, counts.miss],
    // Requests that waited for another request's lookup of the same key (single flight).
    [{ cache: name, tier: 'all', result: 'coalesced' }, counts.coalesced],
    // Database reads ahead of a hot value's expiry, in the background (not a miss: the hit was answered).
    [{ cache: name, tier: 'all', result: 'refreshed' }, counts.refreshed],
    [{ cache: name, tier: 'shared', result: 'poisoned' }, counts.poisoned],
  ]);

  const remember = (key: string, value: V | null) => {
    if (value === null) l1.set(key, null, options.negativeTtlMs, NEGATIVE_BYTES);
    else {
      const ttl = options.ttlMs(value);
      l1.set(key, value, ttl, codec.size(value), refreshAhead ? refreshPoint(ttl) : undefined);
    }
  };

  const background = (work: Promise<unknown>, defer: Defer | undefined) => {
    const quiet = work.catch(() => undefined);
    defer?.(quiet);
  };

  /**
   * The shared tier's answer: the value, null for a stored "not found", undefined for a miss or a failure, and
   * TOMBSTONE for a key changed moments ago (a miss that must not be filled).
   */
  async function fromShared(key: string, defer: Defer | undefined): Promise<V | null | undefined | typeof TOMBSTONE> {
    let raw: string | null;
    try {
      raw = await shared!.get(key);
    } catch {
      return undefined; // Counted and logged by the guard; the loader answers.
    }
    if (raw === null) return undefined;
    if (raw === TOMBSTONE) return TOMBSTONE;
    if (raw === NEGATIVE) return shared!.negatives ? null : undefined;
    const value = codec.decode(raw);
    if (value === undefined) {
      counts.poisoned += 1;
      logger.log('warn', 'cache entry failed validation; dropped', { cache: name, key });
      background(shared!.invalidate([key], options.tombstoneTtlS), defer);
    }
    return value;
  }

  function store(key: string, value: V | null, defer: Defer | undefined) {
    if (!shared || (value === null && !shared.negatives)) return;
    const raw = value === null ? NEGATIVE : codec.encode(value);
    background(shared.fill(key, raw, value === null ? options.negativeSharedTtlS : options.sharedTtlS), defer);
  }

  function afterLoad(key: string, loaded: V | undefined, unchanged: () => boolean, fill: boolean, defer: Defer | undefined): V | null {
    const value = loaded ?? null;
    if (unchanged()) {
      remember(key, value);
      if (fill) store(key, value, defer);
    }
    return value;
  }

  async function loadThroughShared(key: string, load: () => V | undefined | Promise<V | undefined>, defer: Defer | undefined, refresh: boolean) {
    const unchanged = begin(key);
    let cached: Awaited<ReturnType<typeof fromShared>>;
    try {
      cached = await fromShared(key, defer);
      if (cached !== undefined && cached !== TOMBSTONE) {
        if (!refresh) counts.sharedHit += 1;
        if (unchanged()) remember(key, cached);
        return cached;
      }
      if (refresh) counts.refreshed += 1;
      else counts.miss += 1;
      return afterLoad(key, await load(), unchanged, cached !== TOMBSTONE, defer);
    } finally {
      unchanged();
    }
  }

  function forget(keys: string[]) {
    for (const k of keys) {
      const entry = loading.get(k);
      if (entry) entry.epoch += 1;
      l1.delete(k);
      // A load in flight began before the change: later requests must not wait for its answer.
      inflight.delete(k);
    }
  }

  /** A load of the key (shared tier, then the loader), shared by concurrent misses when single flight is on. */
  function load(key: string, loader: () => V | undefined | Promise<V | undefined>, defer: Defer | undefined, refresh: boolean): V | null | Promise<V | null> {
    let result: V | null | Promise<V | null>;
    if (shared) {
      result = loadThroughShared(key, loader, defer, refresh);
    } else {
      if (refresh) counts.refreshed += 1;
      else counts.miss += 1;
      const unchanged = begin(key);
      let loaded: V | undefined | Promise<V | undefined>;
      try {
        loaded = loader();
      } catch (err) {
        unchanged();
        throw err;
      }
      if (!(loaded instanceof Promise)) return afterLoad(key, loaded, unchanged, false, defer);
      result = loaded.then(
        (v) => afterLoad(key, v, unchanged, false, defer),
        (err: unknown) => {
          unchanged();
          throw err;
        },
      );
    }
    if (options.singleFlight) {
      inflight.set(key, result);
      const done = () => inflight.delete(key);
      result.then(done, done);
    }
    return result;
  }

  return {
    get(key, loader, defer) {
      const hit = l1.get(key, refreshAhead ? markDue : undefined);
      if (hit !== undefined) {
        counts.memoryHit += 1;
        if (due) {
          due = false;
          if (!inflight.has(key)) background(Promise.resolve().then(() => load(key, loader, defer, true)), defer);
        }
        return hit;
      }
      if (options.singleFlight) {
        const pending = inflight.get(key);
        if (pending) {
          counts.coalesced += 1;
          return pending;
        }
      }
      return load(key, loader, defer, false);
    },
    forget,
    async invalidate(keys) {
      if (!keys.length) return;
      forget(keys);
      if (!shared) return;
      try {
        await shared.invalidate(keys, options.tombstoneTtlS);
      } catch (err) {
        // The guard keeps the keys and sends them again once the store answers; the change itself is committed.
        logger.log('warn', 'shared cache invalidation deferred', {
          cache: name,
          keys: keys.length,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    },
  };
}
