// The black-box suite (suite.ts) against hop on Node over a local sqld reached by WebSocket (`libsql://…?tls=0`,
// @libsql/client's other transport: one connection, a stream per call), started as a real process (targets.ts).
import { blackBoxSuite } from './suite.ts';
import { describeTarget } from './targets.ts';

describeTarget({ runtime: 'node', storage: 'sqld', transport: 'ws' }, (target) => blackBoxSuite(target));
