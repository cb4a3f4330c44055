#!/usr/bin/env node
// @ts-check
/**
 * The `hop` command's launcher (npm start, npm run hop, npm run migrate and the package's bin): plain JavaScript, so
 * that a Node too old to load TypeScript still reads it and can say so, with exit status 1 and no stack trace,
 * instead of failing on the first `.ts` import. On a recent Node it hands over to src/cli/hop.ts.
 */
import { runsHop, tooOldMessage } from './node-version.js';

if (runsHop(process.versions.node)) {
  // Imported only now: on an old Node the import itself would fail with ERR_UNKNOWN_FILE_EXTENSION.
  await import('../src/cli/hop.ts');
} else {
  console.error(tooOldMessage(process.versions.node));
  process.exitCode = 1;
}
