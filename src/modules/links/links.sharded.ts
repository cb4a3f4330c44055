/**
 * The links repository over shards (HOP_DATABASE_SHARDS): the same contract as links.repository.ts, each link on
 * the shard of its address's bucket, its directory row (id → workspace, domain, bucket) on the control database.
 * A redirect reads one shard; a call by id reads the directory, then one shard; a list asks every shard and merges.
 * Only the redirect reads a shard's replicas (ShardSet.readerOf): every other read here must see the writes just
 * made, so it reads the primary.
 */
import { and, eq, sql } from 'drizzle-orm';
import { domains, linkBuckets, type LinkRow } from '../../db/schema.ts';
import type { Database } from '../../platform/db/client.ts';
import { awaitWritable, bucketOf, mergeNewestFirst, scatter, type ShardSet } from '../../platform/db/shards.ts';
import { createLinksRepository, type LinkFilters, type LinksRepository } from './links.repository.ts';

/**
 * How long after this process wrote an address its redirect reads go to the primary rather than a replica, which may
 * not have the write yet (lag measured at a few ms, at most ~60 ms): the link cache would otherwise keep the stale
 * answer it just invalidated for its whole lifetime.
 */
export const WRITTEN_RECENTLY_MS = 5000;

/** Tables holding a link's own rows beside it on its shard, moved with it when its address changes shard. */
const LINK_TABLES = ['link_tags', 'clicks', 'click_rollups', 'click_totals', 'click_days'] as const;

export interface ShardedLinksRepository extends LinksRepository {
  /**
   * Links changed elsewhere (the click consumer's maxClicks, another worker of this host): their redirects read the
   * primary for a while, as after this repository's own writes.
   */
  changed(refs: ReadonlyArray<{ domain: string; slug: string }>): void;
}

export function createShardedLinksRepository(set: ShardSet, timeoutMs: number): ShardedLinksRepository {
  const { control } = set;
  // Per shard, made on first use: a resharding can add shards while the process runs.
  const repos = new Map<Database, LinksRepository>();
  const repoOf = (db: Database) => repos.get(db) ?? repos.set(db, createLinksRepository(db.orm)).get(db)!;
  const controlRepo = createLinksRepository(control.orm);
  // A shard's reader (its replicas, replicas.ts), or the shard itself: made on first use too.
  const readerRepoOf = (db: Database) => repoOf(set.readerOf(db));

  // Addresses this process wrote, with when: in write order, so the expired ones are at the front.
  const written = new Map<string, number>();
  const wrote = (domain: string, slug: string) => {
    const key = `${domain}/${slug}`;
    const now = Date.now();
    written.delete(key);
    written.set(key, now);
    for (const [k, at] of written) {
      if (now - at < WRITTEN_RECENTLY_MS) break;
      written.delete(k);
    }
  };
  const writtenRecently = (domain: string, slug: string) => {
    const at = written.get(`${domain}/${slug}`);
    return at !== undefined && Date.now() - at < WRITTEN_RECENTLY_MS;
  };

  /**
   * The redirect's read: on a replica unless this process wrote the address lately; a replica's "no such link" is
   * asked of the primary again (a link created a moment ago may not have reached the replica).
   */
  async function findLink(domain: string, slug: string) {
    const shard = set.of(domain, slug);
    const primary = repoOf(shard);
    const reader = readerRepoOf(shard);
    if (reader === primary || writtenRecently(domain, slug)) return primary.findLink(domain, slug);
    return (await reader.findLink(domain, slug)) ?? primary.findLink(domain, slug);
  }
  const owned = (workspaceId: string, hostname: string) =>
    sql`exists (select 1 from ${domains} where ${domains.hostname} = ${hostname} and ${domains.workspaceId} = ${workspaceId})`;

  /** The directory row of a link of this workspace. */
  async function locate(workspaceId: string, id: string) {
    const [row] = await control.orm
      .select({ bucket: linkBuckets.bucket, domain: linkBuckets.domain })
      .from(linkBuckets)
      .where(and(eq(linkBuckets.linkId, id), eq(linkBuckets.workspaceId, workspaceId)));
    return row;
  }

  /**
   * Writes the directory row; on a registered domain only while the workspace owns it, in the same statement (the
   * domain's deletion checks this table in its own). False when the domain was not owned.
   */
  async function enter(link: Pick<LinkRow, 'id' | 'workspaceId' | 'domain'>, bucket: number, onRegisteredDomain: boolean): Promise<boolean> {
    const condition = onRegisteredDomain ? owned(link.workspaceId, link.domain) : sql`1`;
    const rows = await control.orm.all<{ link_id: string }>(sql`insert into ${linkBuckets} (link_id, workspace_id, domain, bucket)
      select ${link.id}, ${link.workspaceId}, ${link.domain}, ${bucket} where ${condition}
      on conflict (link_id) do update set domain = excluded.domain, bucket = excluded.bucket returning link_id`);
    return rows.length > 0;
  }

  // links.workspace_id references workspaces(id), which live on the control database: a shard holds a stub row of
  // each workspace it has links of (no name, never read), written once per shard and process.
  const stubbed = new Set<string>();
  async function stubWorkspace(shard: Database, workspaceId: string) {
    const key = `${set.shards.indexOf(shard)}\u0000${workspaceId}`;
    if (stubbed.has(key)) return;
    await shard.client.execute({ sql: "insert or ignore into workspaces (id, name, created_at) values (?, '', 0)", args: [workspaceId] });
    stubbed.add(key);
  }

  const leave = (id: string) => control.orm.delete(linkBuckets).where(eq(linkBuckets.linkId, id));

  /** Copies a link's rows of `LINK_TABLES` from one shard to another (the link row itself is written by the caller). */
  async function copyOwnRows(from: Database, to: Database, id: string) {
    for (const table of LINK_TABLES) {
      const { rows, columns } = await from.client.execute({ sql: `select * from ${table} where link_id = ?`, args: [id] });
      if (!rows.length) continue;
      const placeholders = `(${columns.map(() => '?').join(',')})`;
      const statements = rows.map((row) => ({
        sql: `insert or replace into ${table} (${columns.join(',')}) values ${placeholders}`,
        args: columns.map((c) => row[c] as never),
      }));
      await to.client.batch(statements, 'write');
    }
  }

  return {
    async insert(link, onRegisteredDomain) {
      wrote(link.domain, link.slug);
      const bucket = bucketOf(link.domain, link.slug);
      await awaitWritable(set, [bucket]);
      if (!(await enter(link, bucket, onRegisteredDomain))) return false;
      const shard = set.ofBucket(bucket);
      try {
        await stubWorkspace(shard, link.workspaceId);
        await repoOf(shard).insert(link, false);
      } catch (err) {
        // A seeded retry finds its own earlier row there: the directory row stays with it.
        if (!(await repoOf(shard).get(link.workspaceId, link.id).catch(() => undefined))) await leave(link.id).catch(() => undefined);
        throw err;
      }
      return true;
    },

    async get(workspaceId, id) {
      const at = await locate(workspaceId, id);
      return at && repoOf(set.ofBucket(at.bucket)).get(workspaceId, id);
    },

    async list(workspaceId: string, f: LinkFilters) {
      // Only the rows each shard owns by the map: while a resharding moves a bucket, its links lie on two shards.
      // A shard's first rows still hold the first of the rows it owns, so each page stays exact.
      const pages = await scatter(
        set.shards,
        async (db, i) => (await repoOf(db).list(workspaceId, f)).filter((l) => set.map[bucketOf(l.domain, l.slug)] === i),
        { timeoutMs },
      );
      return mergeNewestFirst(pages, f.limit);
    },

    async update(workspaceId, id, changes, toRegisteredDomain = false) {
      const at = await locate(workspaceId, id);
      if (!at) return false;
      const from = set.ofBucket(at.bucket);
      const current = await repoOf(from).get(workspaceId, id);
      if (!current) return false;
      const domain = changes.domain ?? current.domain;
      wrote(current.domain, current.slug);
      wrote(domain, changes.slug ?? current.slug);
      const bucket = bucketOf(domain, changes.slug ?? current.slug);
      await awaitWritable(set, [at.bucket, bucket]);
      if (bucket !== at.bucket || domain !== at.domain) {
        if (!(await enter({ id, workspaceId, domain }, bucket, toRegisteredDomain && changes.domain !== undefined))) return false;
      }
      const to = set.ofBucket(bucket);
      try {
        if (to === from) return await repoOf(from).update(workspaceId, id, changes, false);
        // Another shard: the link is written there first (its unique index refuses a taken address), its own
        // rows follow, and only then does it leave the old shard.
        await stubWorkspace(to, workspaceId);
        await repoOf(to).insert({ ...current, ...changes, tags: changes.tags ?? current.tags }, false);
        await copyOwnRows(from, to, id);
        if (changes.tags) await repoOf(to).update(workspaceId, id, { tags: changes.tags }, false);
        await from.client.batch(
          [...LINK_TABLES.map((t) => ({ sql: `delete from ${t} where link_id = ?`, args: [id] })), { sql: 'delete from links where id = ?', args: [id] }],
          'write',
        );
        return true;
      } catch (err) {
        // Refused (a taken address): the directory points back at where the link still is.
        await enter({ id, workspaceId, domain: at.domain }, at.bucket, false).catch(() => undefined);
        throw err;
      }
    },

    async delete(workspaceId, id) {
      const at = await locate(workspaceId, id);
      if (!at) return undefined;
      await awaitWritable(set, [at.bucket]);
      const deleted = await repoOf(set.ofBucket(at.bucket)).delete(workspaceId, id);
      if (deleted) wrote(deleted.domain, deleted.slug);
      await leave(id);
      return deleted;
    },

    findLink,
    changed: (refs) => refs.forEach((r) => wrote(r.domain, r.slug)),
    domainOwner: (host) => controlRepo.domainOwner(host),
  };
}
