/**
 * The scope store of Node, Bun and Workers (nodejs_als): which span is current, and a request's database and cache
 * time, carried through asynchronous work by AsyncLocalStorage. The core only sees the ScopeStore interface
 * (src/platform/tracing.ts); this file is where the runtime's AsyncLocalStorage is used.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Scope, ScopeStore } from '../platform/tracing.ts';

export function createScopes(): ScopeStore {
  const storage = new AsyncLocalStorage<Scope>();
  return { get: () => storage.getStore(), run: (scope, work) => storage.run(scope, work) };
}
