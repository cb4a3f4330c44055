/**
 * The in-process cache tier: least recently used entries go first once either bound (entries, bytes) is reached,
 * and every entry has its own lifetime. A Map keeps insertion order, so its first key is the one inserted or
 * refreshed longest ago. A hit answers synchronously with a Map lookup; it moves its entry to the end only once the
 * entry has fallen into the older half of the insertions since (a reinsertion on every hit cost 9% of a cached
 * redirect's time in a profile), so a hot entry is never the next to go and a hit rarely touches the Map's order.
 *
 * Hand-written rather than lru-cache: that package is ~5.9 KiB gzip of the Worker's 120 KiB budget for features hop
 * does not use (fetch methods, disposal, stale-while-revalidate); this is the part hop needs.
 */

interface Entry<V> {
  value: V;
  expiresAt: number;
  /** When a hit should ask for a fresh copy (`due`), once; Infinity: never or already asked. */
  refreshAt: number;
  bytes: number;
  /** The insertion count when the entry was put (or last moved) at the end. */
  stamp: number;
}

export interface LruOptions {
  maxEntries: number;
  maxBytes: number;
  now?: () => number;
}

export interface Lru<V> {
  /**
   * The live value, or undefined when absent or expired (an expired entry is dropped). `due` is called, once per
   * stored value, on a hit past the value's refresh point (see set).
   */
  get(key: string, due?: () => void): V | undefined;
  /**
   * Stores `value` for `ttlMs`; `bytes` is its approximate size in memory. An entry larger than maxBytes is not kept.
   * `refreshMs` (below ttlMs): from then on, a hit calls its `due`.
   */
  set(key: string, value: V, ttlMs: number, bytes: number, refreshMs?: number): void;
  delete(key: string): void;
  clear(): void;
  readonly size: number;
  readonly bytes: number;
}

export function createLru<V>({ maxEntries, maxBytes, now = Date.now }: LruOptions): Lru<V> {
  const entries = new Map<string, Entry<V>>();
  let bytes = 0;
  let stamp = 0;
  const half = Math.max(1, Math.floor(maxEntries / 2));

  const remove = (key: string, entry: Entry<V>) => {
    entries.delete(key);
    bytes -= entry.bytes;
  };

  return {
    get(key, due) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      const t = now();
      if (entry.expiresAt <= t) {
        remove(key, entry);
        return undefined;
      }
      if (due && entry.refreshAt <= t) {
        entry.refreshAt = Infinity;
        due();
      }
      if (stamp - entry.stamp >= half) {
        entries.delete(key);
        entry.stamp = ++stamp;
        entries.set(key, entry);
      }
      return entry.value;
    },
    set(key, value, ttlMs, size, refreshMs) {
      const old = entries.get(key);
      if (old) remove(key, old);
      if (size > maxBytes || ttlMs <= 0) return;
      const t = now();
      entries.set(key, { value, expiresAt: t + ttlMs, refreshAt: refreshMs === undefined ? Infinity : t + refreshMs, bytes: size, stamp: ++stamp });
      bytes += size;
      while (entries.size > maxEntries || bytes > maxBytes) {
        const [oldestKey, oldest] = entries.entries().next().value!;
        remove(oldestKey, oldest);
      }
    },
    delete(key) {
      const entry = entries.get(key);
      if (entry) remove(key, entry);
    },
    clear() {
      entries.clear();
      bytes = 0;
    },
    get size() {
      return entries.size;
    },
    get bytes() {
      return bytes;
    },
  };
}
