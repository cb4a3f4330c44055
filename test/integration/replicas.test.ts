// The sharded links repository over a shard with a replica, on real libSQL files: a "replica" here is a second
// database file that lags on purpose (it holds only what the test writes into it), so what the redirect reads from
// where is visible. A redirect reads the replica; a replica's miss is asked of the primary; an address written by
// this process (or told of by `changed`) lately is read on the primary; a read by id always on the primary.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@libsql/client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LinkRow } from '../../src/db/schema.ts';
import { createShardedLinksRepository, WRITTEN_RECENTLY_MS } from '../../src/modules/links/links.sharded.ts';
import { createDatabase, type Database } from '../../src/platform/db/client.ts';
import { createReplicaReader } from '../../src/platform/db/replicas.ts';
import { createShardSet, defaultBucketMap } from '../../src/platform/db/shards.ts';
import { migrateDatabase } from '../../src/runtimes/database.ts';

let dir: string;
let dbs: Database[];
let served: string[];
let repo: ReturnType<typeof createShardedLinksRepository>;
let replica: Database;
let now: number;

const WS = 'ws_1';
const link = (slug: string, url: string): LinkRow => ({
  id: `lnk_${slug}`,
  workspaceId: WS,
  domain: 'sho.rt',
  slug,
  url,
  title: null,
  tags: [],
  expiresAt: null,
  maxClicks: null,
  fallbackUrl: null,
  redirectStatus: 302,
  cacheMaxAge: 0,
  forwardQuery: true,
  iosUrl: null,
  androidUrl: null,
  geo: null,
  clicks: 0,
  createdAt: new Date(1),
  updatedAt: new Date(1),
});

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hop-replicas-'));
  dbs = ['control', 'primary', 'replica'].map((name) => createDatabase(createClient({ url: `file:${join(dir, `${name}.db`)}` })));
  for (const db of dbs) await migrateDatabase(db);
  const [control, primary] = dbs as [Database, Database, Database];
  replica = dbs[2]!;
  await control.client.execute({ sql: "insert into workspaces (id, name, created_at) values (?, 'w', 0)", args: [WS] });
  await replica.client.execute({ sql: "insert into workspaces (id, name, created_at) values (?, '', 0)", args: [WS] });
  served = [];
  const reader = createReplicaReader(primary, [replica], { timeoutMs: 1000, onServed: (by) => served.push(by) });
  repo = createShardedLinksRepository(createShardSet(control, [primary], defaultBucketMap(1), { replicas: new Map([[primary, [replica]]]), readerOf: (db) => (db === primary ? reader : db) }), 2000);
  now = Date.now();
  vi.spyOn(Date, 'now').mockImplementation(() => now);
});

afterEach(() => {
  vi.restoreAllMocks();
  for (const db of dbs) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the replica holds: a copy of the row as it was, which the primary has since changed (or never had). */
const onReplica = (row: LinkRow) =>
  replica.client.execute({
    sql: 'insert or replace into links (id, workspace_id, domain, slug, url, tags, updated_at) values (?, ?, ?, ?, ?, ?, 1)',
    args: [row.id, row.workspaceId, row.domain, row.slug, row.url, '[]'],
  });

describe('redirects over a shard with a replica', () => {
  it('asks the primary after a replica\'s miss, and reads the primary for an address written lately', async () => {
    expect(await repo.insert(link('a', 'https://example.com/new'), false)).toBe(true);
    // Written a moment ago: the primary, without asking the replica.
    expect((await repo.findLink('sho.rt', 'a'))?.url).toBe('https://example.com/new');
    expect(served).toEqual([]);

    now += WRITTEN_RECENTLY_MS;
    // The replica has not got it: its miss goes to the primary.
    expect((await repo.findLink('sho.rt', 'a'))?.url).toBe('https://example.com/new');
    expect(served).toEqual(['replica']);
    expect(await repo.findLink('sho.rt', 'nothing')).toBeUndefined();
  });

  it('serves what the replica holds once the write is no longer recent, and the primary again after a change', async () => {
    await repo.insert(link('b', 'https://example.com/v1'), false);
    await onReplica(link('b', 'https://example.com/v1'));
    now += WRITTEN_RECENTLY_MS;
    expect((await repo.findLink('sho.rt', 'b'))?.url).toBe('https://example.com/v1');
    expect(served).toEqual(['replica']);

    // Changed through this process: the replica (still v1) is passed by for the redirect.
    expect(await repo.update(WS, 'lnk_b', { url: 'https://example.com/v2' })).toBe(true);
    expect((await repo.findLink('sho.rt', 'b'))?.url).toBe('https://example.com/v2');
    expect(served).toEqual(['replica']);

    // Told of a change made elsewhere (the click consumer, another worker): the same.
    now += WRITTEN_RECENTLY_MS;
    await onReplica(link('b', 'https://example.com/v2'));
    expect((await repo.findLink('sho.rt', 'b'))?.url).toBe('https://example.com/v2');
    await replica.client.execute("update links set url = 'https://example.com/stale' where id = 'lnk_b'");
    repo.changed([{ domain: 'sho.rt', slug: 'b' }]);
    expect((await repo.findLink('sho.rt', 'b'))?.url).toBe('https://example.com/v2');

    // A read by id, the list: always the primary, whatever the replica holds.
    expect((await repo.get(WS, 'lnk_b'))?.url).toBe('https://example.com/v2');
    expect((await repo.list(WS, { limit: 10 })).map((l) => l.url)).toEqual(['https://example.com/v2']);
  });
});
