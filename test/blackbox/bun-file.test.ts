// The black-box suite (suite.ts) against hop on Bun over an embedded libSQL file, started as a real process (targets.ts).
// Its rate-limit section (rateLimitSuite) runs on a target of its own, started with small limits.
import { blackBoxSuite, RATE_LIMITED_ENV, rateLimitSuite } from './suite.ts';
import { describeTarget } from './targets.ts';

describeTarget({ runtime: 'bun', storage: 'file' }, (target) => blackBoxSuite(target));
describeTarget(
  { runtime: 'bun', storage: 'file', env: RATE_LIMITED_ENV },
  (target) => rateLimitSuite(target),
  'bun + file, rate limited',
);
