// The black-box suite (suite.ts) against hop on Bun over an embedded libSQL file, started as a real process (targets.ts).
import { blackBoxSuite } from './suite.ts';
import { describeTarget } from './targets.ts';

describeTarget({ runtime: 'bun', storage: 'file' }, (target) => blackBoxSuite(target));
