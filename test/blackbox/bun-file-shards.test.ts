// The black-box suite (suite.ts) against hop on Bun with an embedded control database and 3 embedded `file:` shards
// (HOP_DATABASE_SHARDS), started as a real process (targets.ts).
import { blackBoxSuite } from './suite.ts';
import { describeTarget } from './targets.ts';

describeTarget({ runtime: 'bun', storage: 'file', shards: 3 }, (target) => blackBoxSuite(target));
