// The black-box suite (suite.ts) against hop on Bun with a control sqld and 3 sqld shards without replicas
// (HOP_DATABASE_SHARDS), started as real processes (targets.ts); node-sqld-shards.test.ts runs Node over shards
// with a replica each.
import { blackBoxSuite } from './suite.ts';
import { describeTarget } from './targets.ts';

describeTarget({ runtime: 'bun', storage: 'sqld', shards: 3 }, (target) => blackBoxSuite(target));
