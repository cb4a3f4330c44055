/**
 * The shared cache tier, seen by every process: Upstash Redis (Node, Bun, Workers) or Workers KV (Workers only).
 * Values are strings; what they mean and how they are validated is the caller's business (tiered.ts).
 *
 * Invalidation and fills race: a process that read the database just before a change may store the old value just
 * after the change deleted it. On Redis, invalidation therefore writes a short-lived tombstone, and fills only write
 * where nothing is (SET NX): a fill that lost the race finds the tombstone and changes nothing. KV has neither NX
 * nor read-your-writes, so there a change is bounded by the entry's TTL (HOP_CACHE_SHARED_TTL_S, docs/architecture.md).
 *
 * `guardShared` puts every call under a deadline and a circuit breaker: a slow or dead store costs a request at most
 * one deadline, then nothing while the circuit is open. An invalidation that fails is kept and sent again once the
 * store answers, so a change made while Redis was away still reaches it.
 */
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { RedisRest } from '../redis-rest.ts';
import { createCircuitBreaker, withDeadline, type CircuitBreaker } from '../resilience.ts';
import { observed, type ScopeStore, type Tracer } from '../tracing.ts';

export interface SharedStore {
  readonly kind: 'redis' | 'kv';
  /** Whether "no such key" answers may be stored: KV's eventual consistency makes them unsafe there. */
  readonly negatives: boolean;
  get(key: string): Promise<string | null>;
  /** Stores a value read from the database, unless the key holds something (a tombstone, a newer fill). */
  fill(key: string, value: string, ttlS: number): Promise<void>;
  /** Forgets the keys; where supported, leaves a tombstone for `tombstoneTtlS` that fills cannot overwrite. */
  invalidate(keys: string[], tombstoneTtlS: number): Promise<void>;
}

/** What an invalidated key holds on Redis until its tombstone expires: readers treat it as a miss that must not be filled. */
export const TOMBSTONE = '~';

export function redisStore(redis: RedisRest, prefix = 'hop:'): SharedStore {
  return {
    kind: 'redis',
    negatives: true,
    get: (key) => redis.command<string | null>(['GET', prefix + key]),
    async fill(key, value, ttlS) {
      await redis.command(['SET', prefix + key, value, 'EX', ttlS, 'NX']);
    },
    async invalidate(keys, tombstoneTtlS) {
      // Chunks keep each request small when an import invalidates many links.
      for (let i = 0; i < keys.length; i += 500) {
        await redis.pipeline(keys.slice(i, i + 500).map((k) => ['SET', prefix + k, TOMBSTONE, 'EX', tombstoneTtlS]));
      }
    },
  };
}

/** The part of a Workers KV namespace binding the cache uses (kept here so the core needs no Workers types). */
export interface KvNamespaceLike {
  get(key: string, type: 'text'): Promise<string | null>;
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void>;
  delete(key: string): Promise<void>;
}

/** KV refuses an expirationTtl under 60 s. */
const KV_MIN_TTL_S = 60;

export function kvStore(kv: KvNamespaceLike, prefix = 'hop:'): SharedStore {
  return {
    kind: 'kv',
    negatives: false,
    get: (key) => kv.get(prefix + key, 'text'),
    fill: (key, value, ttlS) => kv.put(prefix + key, value, { expirationTtl: Math.max(KV_MIN_TTL_S, ttlS) }),
    async invalidate(keys) {
      await Promise.all(keys.map((k) => kv.delete(prefix + k)));
    },
  };
}

/**
 * The store with each call observed: a client span under the current one (`cache get` and so on, the store's kind,
 * never a key's value), its time added to the request's Server-Timing. No scope store: the store as it is.
 */
export function observeShared(store: SharedStore, tracer: Tracer | undefined, scopes: ScopeStore | undefined): SharedStore {
  if (!scopes) return store;
  const system = store.kind === 'redis' ? 'redis' : 'cloudflare.kv';
  const attributes = (operation: string) => ({ 'db.system': system, 'db.operation': operation });
  return {
    kind: store.kind,
    negatives: store.negatives,
    get: (key) => observed(tracer, scopes, 'cache', 'cache get', attributes('get'), () => store.get(key)),
    fill: (key, value, ttlS) => observed(tracer, scopes, 'cache', 'cache fill', attributes('fill'), () => store.fill(key, value, ttlS)),
    invalidate: (keys, ttlS) =>
      observed(tracer, scopes, 'cache', 'cache invalidate', attributes('invalidate'), () => store.invalidate(keys, ttlS)),
  };
}

export interface GuardOptions {
  timeoutMs: number;
  logger: Logger;
  metrics: Metrics;
  /** Consecutive failures that open the circuit, and how long it stays open. */
  failureThreshold?: number;
  cooldownMs?: number;
  now?: () => number;
}

export interface GuardedStore extends SharedStore {
  readonly breaker: CircuitBreaker;
  /** Invalidations waiting to be sent again. */
  readonly pendingInvalidations: number;
}

/** At most this many failed invalidations are kept for a retry; past it, the oldest rely on the entries' own TTL. */
const MAX_PENDING = 100_000;

export function guardShared(store: SharedStore, options: GuardOptions): GuardedStore {
  const { timeoutMs, logger, metrics } = options;
  const cooldownMs = options.cooldownMs ?? 2000;
  const breaker = createCircuitBreaker({
    failureThreshold: options.failureThreshold ?? 5,
    cooldownMs,
    now: options.now,
    onStateChange(state, reason) {
      const level = state === 'open' ? 'warn' : 'info';
      logger.log(level, `shared cache circuit ${state}`, {
        store: store.kind,
        reason,
        effect: state === 'open' ? 'redirects read the in-process tier and the database' : 'shared tier in use',
      });
      metrics.set('hop_cache_circuit_open', 'Whether the shared cache tier is bypassed (1) after failures.', { store: store.kind }, state === 'open' ? 1 : 0);
    },
  });
  const failures = { get: 0, fill: 0, invalidate: 0 };
  metrics.collect('hop_cache_shared_errors_total', 'Shared cache calls that failed, timed out or were skipped by the open circuit.', 'counter', () =>
    Object.entries(failures).map(([op, n]) => [{ store: store.kind, op }, n]),
  );
  const pending = new Set<string>();
  let pendingTtlS = 0;
  let flushing = false;

  const call = <T>(op: keyof typeof failures, work: () => Promise<T>): Promise<T> =>
    breaker.run(() => withDeadline(work(), timeoutMs, `shared cache ${op}`)).then(
      (value) => {
        if (pending.size && !flushing) void flush();
        return value;
      },
      (err: unknown) => {
        failures[op] += 1;
        throw err;
      },
    );

  // Failed invalidations are also retried on a timer, once a cooldown: a process that gets no further request (an
  // API-only one) would otherwise never send them, and every other process would serve the old link from the store
  // until its entry expires (HOP_CACHE_SHARED_TTL_S). Unref'd, so it never keeps a process alive; on Workers a timer
  // does not outlive its request, and the next successful call sends them as before.
  let retry: ReturnType<typeof setTimeout> | undefined;
  function retryLater() {
    if (retry !== undefined) return;
    retry = setTimeout(() => {
      retry = undefined;
      void (flushing ? Promise.resolve() : flush()).then(() => {
        if (pending.size) retryLater();
      });
    }, cooldownMs);
    (retry as { unref?: () => void }).unref?.();
  }

  async function flush() {
    flushing = true;
    try {
      while (pending.size) {
        const keys = [...pending].slice(0, 500);
        await breaker.run(() => withDeadline(store.invalidate(keys, pendingTtlS), timeoutMs * 4, 'shared cache invalidate retry'));
        for (const k of keys) pending.delete(k);
      }
      logger.log('info', 'shared cache: invalidations that had failed were sent again', { store: store.kind });
    } catch {
      // Still unreachable: the next successful call tries again.
    } finally {
      flushing = false;
    }
  }

  return {
    kind: store.kind,
    negatives: store.negatives,
    breaker,
    get pendingInvalidations() {
      return pending.size;
    },
    get: (key) => call('get', () => store.get(key)),
    fill: (key, value, ttlS) => call('fill', () => store.fill(key, value, ttlS)),
    async invalidate(keys, tombstoneTtlS) {
      try {
        await call('invalidate', () => store.invalidate(keys, tombstoneTtlS));
      } catch (err) {
        pendingTtlS = Math.max(pendingTtlS, tombstoneTtlS);
        for (const k of keys) {
          if (pending.size >= MAX_PENDING) pending.delete(pending.values().next().value!);
          pending.add(k);
        }
        retryLater();
        throw err;
      }
    },
  };
}
