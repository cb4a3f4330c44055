// The black-box suite (suite.ts) against hop on workerd (wrangler dev) over a local sqld, started as a real process (targets.ts).
// Its rate-limit section (rateLimitSuite) runs on a target of its own, started with small limits.
import { blackBoxSuite, RATE_LIMITED_ENV, rateLimitSuite } from './suite.ts';
import { describeTarget } from './targets.ts';

describeTarget({ runtime: 'workerd', storage: 'sqld' }, (target) => blackBoxSuite(target));
describeTarget(
  { runtime: 'workerd', storage: 'sqld', env: RATE_LIMITED_ENV },
  (target) => rateLimitSuite(target),
  'workerd + sqld, rate limited',
);
