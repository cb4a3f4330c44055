/**
 * The shard layout a running process follows while `hop reshard` moves buckets: the shard list the bucket map's
 * indices name (`shard_layout`, written by the first resharding), the map itself and the frozen buckets, all on the
 * control database. A process reads the layout's epoch every LAYOUT_POLL_MS (one primary-key read) and reloads the
 * three when it changed, opening the shards it did not have; its ShardSet changes in place.
 */
import type { Database } from './client.ts';
import { BUCKETS, createShardSet, LAYOUT_POLL_MS, loadBucketMap, type ShardSet } from './shards.ts';

export interface Layout {
  epoch: number;
  /** The list the map's indices name; undefined before the first resharding (HOP_DATABASE_SHARDS is it). */
  urls: string[] | undefined;
  map: number[];
  frozen: number[];
  /** The resharding in progress or last done. */
  reshard: { source: string[]; target: string[]; phase: string } | undefined;
}

export async function readEpoch(control: Database): Promise<number> {
  const { rows } = await control.client.execute('select epoch from shard_layout where id = 1');
  return rows[0] ? Number(rows[0].epoch) : 0;
}

/** The layout in one read transaction: epoch, list, map and freezes agree with each other. */
export async function readLayout(control: Database): Promise<Layout> {
  const [layout, map, frozen, reshard] = await control.client.batch(
    [
      'select epoch, shards from shard_layout where id = 1',
      'select bucket, shard from shard_buckets order by bucket',
      "select bucket from reshard_buckets where phase = 'frozen'",
      'select source, target, phase from reshard_state where id = 1',
    ],
    'read',
  );
  const m = new Array<number>(BUCKETS).fill(-1);
  for (const row of map!.rows) m[Number(row.bucket)] = Number(row.shard);
  const l = layout!.rows[0];
  const r = reshard!.rows[0];
  return {
    epoch: l ? Number(l.epoch) : 0,
    urls: l ? (JSON.parse(String(l.shards)) as string[]) : undefined,
    map: m,
    frozen: frozen!.rows.map((row) => Number(row.bucket)),
    reshard: r ? { source: JSON.parse(String(r.source)) as string[], target: JSON.parse(String(r.target)) as string[], phase: String(r.phase) } : undefined,
  };
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((u, i) => u === b[i]);

export class LayoutMismatchError extends Error {
  override name = 'LayoutMismatchError';
}

export interface WatchedShards {
  set: ShardSet;
  /** Every primary opened, including those a resharding removed from the list (closed with the process). */
  opened: Map<string, Database>;
  stop(): void;
}

/**
 * The ShardSet of a starting process, and the watch that keeps it current. `listed` is HOP_DATABASE_SHARDS; once a
 * resharding wrote a layout, the layout's list is the one that counts, and HOP_DATABASE_SHARDS must name it (or,
 * while a resharding runs, its source or target list): a process started with a list the map no longer means is
 * refused rather than misrouting links.
 */
export async function openShardLayout(
  control: Database,
  listed: readonly string[],
  open: (url: string) => Promise<Database>,
  {
    watch = true,
    onError,
    openReplicas,
  }: { watch?: boolean; onError?: (err: unknown) => void; openReplicas?: (url: string) => Promise<Database[]> } = {},
): Promise<WatchedShards> {
  const opened = new Map<string, Database>();
  // A primary's replicas, as HOP_DATABASE_SHARDS names them for its URL (a shard a resharding adds has none).
  const replicas = new Map<Database, Database[]>();
  const openAll = async (urls: readonly string[]) => {
    for (const url of urls) {
      if (opened.has(url)) continue;
      const db = await open(url);
      opened.set(url, db);
      const own = (await openReplicas?.(url)) ?? [];
      if (own.length) replicas.set(db, own);
    }
    return urls.map((u) => opened.get(u)!);
  };
  try {
    let layout = await readLayout(control);
    if (layout.urls) {
      const running = layout.reshard && layout.reshard.phase !== 'done';
      const accepted = [layout.urls, ...(running ? [layout.reshard!.source, layout.reshard!.target] : [])];
      if (!accepted.some((list) => sameList(list, listed))) {
        throw new LayoutMismatchError(
          `HOP_DATABASE_SHARDS lists ${listed.join(',')} but hop reshard left the shards as ${layout.urls.join(',')}; ` +
            'set HOP_DATABASE_SHARDS to that list.',
        );
      }
    } else {
      // No resharding yet: HOP_DATABASE_SHARDS is the list, and the map is written on first use.
      layout = { ...layout, urls: [...listed], map: await loadBucketMap(control, listed.length) };
    }
    const shards = await openAll(layout.urls!);
    const set = createShardSet(control, shards, layout.map, { state: { frozen: new Set(layout.frozen), checkedAt: Date.now() }, replicas });
    if (!watch) return { set, opened, stop: () => {} };

    let epoch = layout.epoch;
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        try {
          if ((await readEpoch(control)) !== epoch) {
            const next = await readLayout(control);
            const urls = next.urls ?? layout.urls!;
            const dbs = await openAll(urls);
            // One synchronous step: every reader sees the old layout or the new one, never a mix.
            (set.shards as Database[]).splice(0, set.shards.length, ...dbs);
            (set.map as number[]).splice(0, BUCKETS, ...next.map);
            set.state.frozen.clear();
            for (const b of next.frozen) set.state.frozen.add(b);
            epoch = next.epoch;
          }
          set.state.checkedAt = Date.now();
        } catch (err) {
          onError?.(err);
        } finally {
          busy = false;
        }
      })();
    }, LAYOUT_POLL_MS);
    (timer as { unref?: () => void }).unref?.();
    return { set, opened, stop: () => clearInterval(timer) };
  } catch (err) {
    for (const db of [...opened.values(), ...[...replicas.values()].flat()]) db.close();
    throw err;
  }
}
