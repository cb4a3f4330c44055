// The black-box suite (suite.ts) against hop on Node over a local sqld, started as a real process (targets.ts).
import { blackBoxSuite } from './suite.ts';
import { describeTarget } from './targets.ts';

describeTarget({ runtime: 'node', storage: 'sqld' }, (target) => blackBoxSuite(target));
