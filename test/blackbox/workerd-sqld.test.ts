// The black-box suite (suite.ts) against hop on workerd (wrangler dev) over a local sqld, started as a real process (targets.ts).
import { blackBoxSuite } from './suite.ts';
import { describeTarget } from './targets.ts';

describeTarget({ runtime: 'workerd', storage: 'sqld' }, (target) => blackBoxSuite(target));
