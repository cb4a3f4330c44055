// The black-box suite (suite.ts) against hop on Node with a control sqld and 3 shards, each a sqld process of its
// own (HOP_DATABASE_SHARDS), started as real processes (targets.ts).
import { blackBoxSuite } from './suite.ts';
import { describeTarget } from './targets.ts';

describeTarget({ runtime: 'node', storage: 'sqld', shards: 3 }, (target) => blackBoxSuite(target));
