/**
 * The workspaces repository over shards (HOP_DATABASE_SHARDS): workspaces, keys and domains stay on the control
 * database; what counts links asks every shard, and a domain is deleted only while the link directory (control
 * database, link_buckets) names no link on it, in the same statement as the deletion.
 */
import { and, count, eq, sql } from 'drizzle-orm';
import { domains, linkBuckets } from '../../db/schema.ts';
import type { Database } from '../../platform/db/client.ts';
import { scatter, type ShardSet } from '../../platform/db/shards.ts';
import { createWorkspacesRepository, type WorkspacesRepository } from './workspaces.repository.ts';

export function createShardedWorkspacesRepository(set: ShardSet, timeoutMs: number): WorkspacesRepository {
  const control = createWorkspacesRepository(set.control.orm);
  // Per shard, made on first use: a resharding can add shards while the process runs.
  const made = new Map<Database, WorkspacesRepository>();
  const repoOf = (db: Database) => made.get(db) ?? made.set(db, createWorkspacesRepository(db.orm)).get(db)!;
  const total = async (count: (repo: WorkspacesRepository) => Promise<number>) =>
    (await scatter(set.shards, (db) => count(repoOf(db)), { timeoutMs })).reduce((a, b) => a + b, 0);
  return {
    ...control,
    // The directory, not the shards: the same rows the deletion checks, so that a link being created (its directory
    // row written, its shard row not yet) counts as in use rather than the domain as gone.
    async countLinksOnDomain(workspaceId, hostname) {
      const [row] = await set.control.orm
        .select({ n: count() })
        .from(linkBuckets)
        .where(and(eq(linkBuckets.workspaceId, workspaceId), eq(linkBuckets.domain, hostname)));
      return row?.n ?? 0;
    },
    countLinksTargeting: (workspaceId, hostname) => total((repo) => repo.countLinksTargeting(workspaceId, hostname)),
    async deleteDomain(workspaceId, id) {
      const rows = await set.control.orm
        .delete(domains)
        .where(
          and(
            eq(domains.id, id),
            eq(domains.workspaceId, workspaceId),
            sql`not exists (select 1 from ${linkBuckets} where ${linkBuckets.domain} = ${domains.hostname} and ${linkBuckets.workspaceId} = ${domains.workspaceId})`,
          ),
        )
        .returning({ id: domains.id });
      return rows.length > 0;
    },
  };
}
