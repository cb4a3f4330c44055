/**
 * The in-process cache tier: least recently used entries go first once either bound (entries, bytes) is reached,
 * and every entry has its own lifetime. A hit is a Map lookup plus a reinsertion (a Map keeps insertion order, so
 * the first key is always the least recently used), and it answers synchronously.
 *
 * Hand-written rather than lru-cache: that package is ~5.9 KiB gzip of the Worker's 120 KiB budget for features hop
 * does not use (fetch methods, disposal, stale-while-revalidate); this is the part hop needs.
 */

interface Entry<V> {
  value: V;
  expiresAt: number;
  bytes: number;
}

export interface LruOptions {
  maxEntries: number;
  maxBytes: number;
  now?: () => number;
}

export interface Lru<V> {
  /** The live value, or undefined when absent or expired (an expired entry is dropped). */
  get(key: string): V | undefined;
  /** Stores `value` for `ttlMs`; `bytes` is its approximate size in memory. An entry larger than maxBytes is not kept. */
  set(key: string, value: V, ttlMs: number, bytes: number): void;
  delete(key: string): void;
  clear(): void;
  readonly size: number;
  readonly bytes: number;
}

export function createLru<V>({ maxEntries, maxBytes, now = Date.now }: LruOptions): Lru<V> {
  const entries = new Map<string, Entry<V>>();
  let bytes = 0;

  const remove = (key: string, entry: Entry<V>) => {
    entries.delete(key);
    bytes -= entry.bytes;
  };

  return {
    get(key) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      if (entry.expiresAt <= now()) {
        remove(key, entry);
        return undefined;
      }
      // Most recently used moves to the end.
      entries.delete(key);
      entries.set(key, entry);
      return entry.value;
    },
    set(key, value, ttlMs, size) {
      const old = entries.get(key);
      if (old) remove(key, old);
      if (size > maxBytes || ttlMs <= 0) return;
      entries.set(key, { value, expiresAt: now() + ttlMs, bytes: size });
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
