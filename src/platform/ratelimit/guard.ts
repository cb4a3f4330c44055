/**
 * A remote rate-limit store (Redis, the Cloudflare bindings) under a deadline and a circuit breaker
 * (src/platform/resilience.ts). A call that fails or misses its deadline is degraded as configured: `open` allows
 * the request without a count, `closed` refuses it with 503. Each degraded request counts in
 * `hop_ratelimit_degraded_total{mode}`; the log has one warning when the breaker opens and one when it closes.
 */
import { AppError } from '../../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { createCircuitBreaker, withDeadline } from '../resilience.ts';
import type { RateLimitStore, RateVerdict } from './ratelimit.ts';

export interface GuardOptions {
  timeoutMs: number;
  onError: 'open' | 'closed';
  logger: Logger;
  metrics: Metrics;
  /** Consecutive failures that open the breaker, and how long it then stays open (resilience.ts's defaults). */
  failureThreshold?: number;
  cooldownMs?: number;
}

export const DEGRADED_METRIC = 'hop_ratelimit_degraded_total';

export function guardRateLimitStore(store: RateLimitStore, options: GuardOptions): RateLimitStore {
  const { timeoutMs, onError, logger, metrics } = options;
  const breaker = createCircuitBreaker({
    failureThreshold: options.failureThreshold,
    cooldownMs: options.cooldownMs,
    onStateChange(state, reason) {
      // The mode says what happens meanwhile: open allows requests unchecked, closed refuses them with 503.
      if (state === 'open') logger.log('warn', 'rate limiting degraded', { store: store.kind, mode: onError, reason });
      else if (state === 'closed') logger.log('warn', 'rate limiting restored', { store: store.kind, mode: onError });
    },
  });

  function degrade(takes: Parameters<RateLimitStore['take']>[0]): RateVerdict[] {
    metrics.increment(DEGRADED_METRIC, 'Requests whose rate limit could not be checked: allowed (open) or refused (closed).', {
      mode: onError,
    });
    if (onError === 'closed') {
      throw new AppError('unavailable', 'Rate limiting is unavailable; retry shortly.', { retryAfterS: 1 });
    }
    return takes.map(({ policy }) => ({ policy, allowed: true, remaining: undefined, resetS: undefined }));
  }

  return {
    kind: store.kind,
    refunds: store.refunds,
    take(takes, now) {
      return breaker
        .run(() => withDeadline(Promise.resolve().then(() => store.take(takes, now)), timeoutMs, `rate limit (${store.kind})`))
        .catch(() => degrade(takes));
    },
  };
}
