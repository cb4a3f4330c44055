/**
 * Guards for calls to an optional remote service (the shared cache, a rate-limit store): a deadline on each call and
 * a circuit breaker that stops calling a service that keeps failing, so a slow or dead Redis costs a request at most
 * one deadline, and after a few failures nothing at all until a probe succeeds again.
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

/** Rejects with DeadlineError when `work` has not settled after `ms`; the work itself is left to finish or fail. */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
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
