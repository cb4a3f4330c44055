/**
 * The in-process rate-limit store: a fixed window per (policy, key) in a Map, consulted synchronously (a redirect
 * pays about a Map lookup and no promise). Counts are per process or isolate. Expired windows are swept on use,
 * never by a timer (a timer started inside a Worker request does not outlive it), and each policy keeps at most
 * `maxKeys` counters: past that the oldest are dropped, which gives those clients a fresh window early.
 */
import { verdictOf, type RatePolicy, type RateLimitStore, type RateVerdict } from './ratelimit.ts';

interface Window {
  used: number;
  endsAt: number;
}

interface Counters {
  windows: Map<string, Window>;
  nextSweep: number;
}

export function createMemoryRateLimitStore({ maxKeys = 100_000 } = {}): RateLimitStore {
  const byPolicy = new Map<RatePolicy, Counters>();

  return {
    kind: 'memory',
    refunds: true,
    take(takes, now) {
      const out: RateVerdict[] = [];
      for (const take of takes) {
        const { policy, key, cost } = take;
        let counters = byPolicy.get(policy);
        if (!counters) byPolicy.set(policy, (counters = { windows: new Map(), nextSweep: 0 }));
        if (now >= counters.nextSweep) {
          for (const [k, w] of counters.windows) if (w.endsAt <= now) counters.windows.delete(k);
          counters.nextSweep = now + policy.windowS * 1000;
        }
        let w = counters.windows.get(key);
        if (cost === -1) {
          // A window that has passed since the place was taken has nothing left to give back.
          if (w && w.endsAt > now) w.used = Math.max(0, w.used - 1);
          out.push(verdictOf(take, w && w.endsAt > now ? w.used : 0, w && w.endsAt > now ? w.endsAt - now : policy.windowS * 1000));
          continue;
        }
        if (!w || w.endsAt <= now) {
          const fresh = { used: 0, endsAt: now + policy.windowS * 1000 };
          if (cost === 0) {
            out.push(verdictOf(take, 0, fresh.endsAt - now));
            continue;
          }
          // Deleted and set again so that the Map's order stays the order windows started in: when full, the first
          // entry is the oldest window.
          if (!counters.windows.delete(key) && counters.windows.size >= maxKeys) {
            counters.windows.delete(counters.windows.keys().next().value!);
          }
          counters.windows.set(key, (w = fresh));
        }
        w.used += cost;
        out.push(verdictOf(take, w.used, w.endsAt - now));
      }
      return out;
    },
  };
}
