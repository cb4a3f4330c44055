#!/usr/bin/env -S node --max-semi-space-size=8
// @ts-check
/**
 * The `hop` command's launcher (npm start, npm run hop, npm run migrate and the package's bin): plain JavaScript, so
 * that a Node too old to load TypeScript still reads it and can say so, with exit status 1 and no stack trace,
 * instead of failing on the first `.ts` import. On a recent Node it hands over to src/cli/hop.ts.
 *
 * `--max-semi-space-size=8` (here and in `npm start`): V8 sizes the young generation by the machine's memory, up to
 * 64 MB per semi-space, which was ~40 MB of hop's peak under load; at 8 MB redirects ran as fast (at 4 MB about 5%
 * slower), see docs/architecture.md, "Memory".
 */
import module from 'node:module';
import { runsHop, tooOldMessage } from './node-version.js';

if (runsHop(process.versions.node)) {
  // Node strips TypeScript types with a WebAssembly module that stays loaded, about 17 MB in each thread that loads
  // a .ts file; with the compile cache warm (every start after the first) it is never loaded. The environment
  // variable carries the cache to the click thread, which reads it when it starts.
  const cache = module.enableCompileCache();
  if (cache.directory && !process.env.NODE_COMPILE_CACHE) process.env.NODE_COMPILE_CACHE = cache.directory;
  // Imported only now: on an old Node the import itself would fail with ERR_UNKNOWN_FILE_EXTENSION.
  await import('../src/cli/hop.ts');
} else {
  console.error(tooOldMessage(process.versions.node));
  process.exitCode = 1;
}
