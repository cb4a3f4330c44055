/**
 * Gives back to the system what loading hop's modules left behind. Loading the module graph (drizzle's above all)
 * allocates far more than it keeps: after start-up a Node isolate held about 50 MB of pages that only V8's
 * last-resort collection (several full, compacting passes) returns, and the memory reducer ran one only after minutes
 * of idling. Called once per isolate when it has loaded what it needs: the server after start-up, the click thread
 * when its database is open. On Bun, its own full collection.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

export function releaseLoadingGarbage(): void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) return bun.gc(true);
  let gc = (globalThis as { gc?: Gc }).gc;
  if (!gc) {
    // V8's collector is reachable from JavaScript only through --expose-gc, which a new context picks up when set.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
