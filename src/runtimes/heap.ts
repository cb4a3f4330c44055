/**
 * Full garbage collections where hop knows one pays off, on Node and Bun. Loading hop's module graph (drizzle's above
 * all) allocates far more than it keeps: after start-up a Node isolate held about 50 MB of pages that only V8's
 * last-resort collection (several full, compacting passes) returns, and the memory reducer did so only after minutes
 * of idling; `releaseLoadingGarbage` runs once per isolate when it has loaded what it needs (the server after
 * start-up, the click thread when its database is open). `collectGarbage` frees what only a collection frees and V8
 * cannot see: native memory held by dropped JavaScript wrappers (the embedded writer's statements).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options: { type: 'major'; execution: 'sync'; flavor?: 'last-resort' }) => void;

let v8Gc: Gc | undefined;

function gc(): Gc {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) return () => bun.gc(true);
  if (!v8Gc) {
    v8Gc = (globalThis as { gc?: Gc }).gc;
    if (!v8Gc) {
      // V8's collector is reachable from JavaScript only through --expose-gc, which a new context picks up when set.
      setFlagsFromString('--expose-gc');
      v8Gc = runInNewContext('gc') as Gc;
    }
  }
  return v8Gc;
}

export function releaseLoadingGarbage(): void {
  gc()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

export function collectGarbage(): void {
  gc()({ type: 'major', execution: 'sync' });
}
