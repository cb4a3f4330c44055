/**
 * Guards for calls to a remote service, each written once: a deadline on a call (the database, the shared cache, a
 * rate-limit store, a consumer's last batch), the waits between retries (the queues, the Redis client), and a
 * circuit breaker that stops calling an optional service that keeps failing, so a slow or dead Redis costs a request
 * at most one deadline, and after a few failures nothing at all until a probe succeeds again.
 *
 * Hand-written rather than a library (cockatiel, opossum): the breaker is ~40 lines, the Worker's bundle has a hard
 * gzip budget (docs/benchmarks.md), and opossum needs Node's events module.
 */

export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

export class CircuitOpenError extends Error {
  override name = 'CircuitOpenError';
}

/**
 * `work`'s outcome when it settles within `ms`; otherwise what the deadline makes of it: a DeadlineError naming
 * `what` when `onTimeout` is a string, else whatever `onTimeout` returns or throws (a 503, `false`...). The work
 * itself is left to finish or fail; the timer never outlives the race.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: string | (() => T)): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      if (typeof onTimeout === 'string') reject(new DeadlineError(`${onTimeout}: no answer within ${ms} ms`));
      else {
        try {
          resolve(onTimeout());
        } catch (err) {
          reject(err);
        }
      }
    }, ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export interface BackoffOptions {
  /** The wait after the first failure. */
  firstMs: number;
  /** The longest wait; each failure doubles the one before up to it. */
  maxMs: number;
}

/** The wait before retrying after `failures` consecutive failures (at least one): firstMs, doubling, at most maxMs. */
export function backoffDelay(failures: number, { firstMs, maxMs }: BackoffOptions): number {
  return Math.min(firstMs * 2 ** (Math.max(1, failures) - 1), maxMs);
}

export interface Backoff {
  /** Counts a failure; returns the wait before the next try. */
  fail(): number;
  /** A success: the next failure waits the first wait again. */
  reset(): void;
  /** The wait after the last failure; 0 after a success. */
  readonly ms: number;
}

/** Exponential backoff over consecutive failures (backoffDelay), for a loop that retries until it succeeds. */
export function createBackoff(options: BackoffOptions): Backoff {
  let failures = 0;
  return {
    fail: () => backoffDelay(++failures, options),
    reset() {
      failures = 0;
    },
    get ms() {
      return failures ? backoffDelay(failures, options) : 0;
    },
  };
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold?: number;
  /** How long an open circuit refuses calls before letting one probe through. */
  cooldownMs?: number;
  /** Called on every change of state (for logs and metrics). */
  onStateChange?: (state: CircuitState, reason: string) => void;
  now?: () => number;
}

export interface CircuitBreaker {
  /** Runs `call` unless the circuit is open (then rejects with CircuitOpenError without calling). */
  run<T>(call: () => Promise<T>): Promise<T>;
  readonly state: CircuitState;
}

/**
 * closed → (failureThreshold consecutive failures) → open → (cooldownMs) → half-open: one call goes through;
 * its success closes the circuit, its failure opens it for another cooldown. Calls made while the probe is in
 * flight are refused as if open.
 */
export function createCircuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreaker {
  const { failureThreshold = 5, cooldownMs = 5000, onStateChange, now = Date.now } = options;
  let state: CircuitState = 'closed';
  let failures = 0;
  let openedAt = 0;
  let probing = false;

  const move = (next: CircuitState, reason: string) => {
    if (next === state) return;
    state = next;
    onStateChange?.(next, reason);
  };

  return {
    get state() {
      return state;
    },
    async run(call) {
      if (state === 'open') {
        if (now() - openedAt < cooldownMs) throw new CircuitOpenError('circuit open');
        move('half-open', 'cooldown over');
      }
      if (state === 'half-open') {
        if (probing) throw new CircuitOpenError('circuit half-open, probe in flight');
        probing = true;
      }
      try {
        const result = await call();
        failures = 0;
        if (state === 'half-open') move('closed', 'probe succeeded');
        return result;
      } catch (err) {
        failures += 1;
        if (state === 'half-open' || failures >= failureThreshold) {
          openedAt = now();
          move('open', err instanceof Error ? err.message : String(err));
        }
        throw err;
      } finally {
        if (state !== 'half-open') probing = false;
      }
    },
  };
}
