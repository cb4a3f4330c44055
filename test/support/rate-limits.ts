/**
 * Rate limits far above what any test sends from its one address, for every test app and black-box target, so
 * that only the tests of rate limiting (which set their own) meet them; the limiter still runs on every request.
 */
export const GENEROUS_RATE_LIMITS = {
  HOP_RATE_LIMIT_API: '1000000/60s',
  HOP_RATE_LIMIT_UNAUTHENTICATED: '1000000/60s',
  HOP_RATE_LIMIT_REDIRECT: '1000000/60s',
  HOP_RATE_LIMIT_NOT_FOUND: '1000000/60s',
};
