/** drizzle queries for workspaces, API keys and domains. Every query of a tenant's data is bound to its workspace. */
import { and, count, desc, eq, isNull, or, sql, type SQL } from 'drizzle-orm';
import { apiKeys, domains, links, workspaces, type ApiKeyRow, type DomainRow, type WorkspaceRow } from '../../db/schema.ts';
import type { Orm } from '../../platform/db/client.ts';

export type NewApiKey = Omit<ApiKeyRow, 'revokedAt'>;

export function createWorkspacesRepository(orm: Orm) {
  // The workspace's domains come with the key: a link's create checks its hosts against them, and on a remote
  // database a second read is a second round trip.
  const activeKeyByHash = orm
    .select({
      id: apiKeys.id,
      workspaceId: apiKeys.workspaceId,
      scopes: apiKeys.scopes,
      // Written out: drizzle leaves a column in a subquery unqualified, and workspace_id would then be the domain's own.
      domains: sql<string>`(select json_group_array(d.hostname) from domains d where d.workspace_id = api_keys.workspace_id)`,
    })
    .from(apiKeys)
    .where(and(eq(apiKeys.hash, sql.placeholder('hash')), isNull(apiKeys.revokedAt)))
    .prepare();

  return {
    async insertWorkspaceWithKey(workspace: WorkspaceRow, key: NewApiKey): Promise<void> {
      await orm.batch([orm.insert(workspaces).values(workspace), orm.insert(apiKeys).values(key)]);
    },

    async getWorkspace(id: string): Promise<WorkspaceRow | undefined> {
      return orm.query.workspaces.findFirst({ where: eq(workspaces.id, id) });
    },

    /**
     * Inserts the workspace and its key only if the database has no workspace yet, in one transaction, so two
     * processes starting on an empty database create one default workspace between them. True if it inserted.
     */
    async insertFirstWorkspace(workspace: WorkspaceRow, key: NewApiKey): Promise<boolean> {
      await orm.batch([
        orm.run(sql`insert into ${workspaces} (id, name, created_at)
          select ${workspace.id}, ${workspace.name}, ${workspace.createdAt.getTime()}
          where not exists (select 1 from ${workspaces})`),
        orm.run(sql`insert into ${apiKeys} (id, workspace_id, name, prefix, hash, scopes, created_at)
          select ${key.id}, ${key.workspaceId}, ${key.name}, ${key.prefix}, ${key.hash}, ${JSON.stringify(key.scopes)}, ${key.createdAt.getTime()}
          where exists (select 1 from ${workspaces} where id = ${workspace.id})`),
      ]);
      const [row] = await orm.select({ id: workspaces.id }).from(workspaces).where(eq(workspaces.id, workspace.id));
      return row !== undefined;
    },

    async insertKey(key: NewApiKey): Promise<void> {
      await orm.insert(apiKeys).values(key);
    },

    async listActiveKeys(workspaceId: string): Promise<ApiKeyRow[]> {
      return orm
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.workspaceId, workspaceId), isNull(apiKeys.revokedAt)))
        .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id));
    },

    /**
     * Marks a key revoked, unless it is the workspace's last active admin key; returns false when it does not exist
     * in this workspace, is already revoked, or is that last admin key. The check and the write are one statement,
     * so two admin keys revoking each other at once cannot both pass the check.
     */
    async revokeKey(workspaceId: string, id: string, at: Date): Promise<boolean> {
      const isAdmin = (scopes: SQL) => sql`exists (select 1 from json_each(${scopes}) where value = 'workspace:admin')`;
      const anotherAdmin = sql`exists (select 1 from ${apiKeys} as other
        where other.workspace_id = ${workspaceId} and other.id <> ${id} and other.revoked_at is null
          and ${isAdmin(sql`other.scopes`)})`;
      const rows = await orm
        .update(apiKeys)
        .set({ revokedAt: at })
        .where(
          and(
            eq(apiKeys.id, id),
            eq(apiKeys.workspaceId, workspaceId),
            isNull(apiKeys.revokedAt),
            or(sql`not ${isAdmin(sql`${apiKeys}.scopes`)}`, anotherAdmin),
          ),
        )
        .returning({ id: apiKeys.id });
      return rows.length > 0;
    },

    async findActiveKeyByHash(hash: string) {
      const [row] = await activeKeyByHash.all({ hash });
      return row;
    },

    async insertDomain(domain: DomainRow): Promise<void> {
      await orm.insert(domains).values(domain);
    },

    async listDomains(workspaceId: string): Promise<DomainRow[]> {
      return orm
        .select()
        .from(domains)
        .where(eq(domains.workspaceId, workspaceId))
        .orderBy(desc(domains.createdAt), desc(domains.id));
    },

    async getDomain(workspaceId: string, id: string): Promise<DomainRow | undefined> {
      const [row] = await orm
        .select()
        .from(domains)
        .where(and(eq(domains.id, id), eq(domains.workspaceId, workspaceId)));
      return row;
    },

    async countLinksOnDomain(workspaceId: string, hostname: string): Promise<number> {
      const [row] = await orm
        .select({ n: count() })
        .from(links)
        .where(and(eq(links.workspaceId, workspaceId), eq(links.domain, hostname)));
      return row?.n ?? 0;
    },

    /** Links of the workspace with any target (url, fallback, device or geo) on `hostname`. */
    async countLinksTargeting(workspaceId: string, hostname: string): Promise<number> {
      const onHost = (column: SQL) =>
        sql`(instr(lower(${column}), ${`://${hostname}/`}) > 0 or instr(lower(${column}), ${`://${hostname}:`}) > 0)`;
      const [row] = await orm
        .select({ n: count() })
        .from(links)
        .where(
          and(
            eq(links.workspaceId, workspaceId),
            or(...[links.url, links.fallbackUrl, links.iosUrl, links.androidUrl, links.geo].map((c) => onHost(sql`${c}`))),
          ),
        );
      return row?.n ?? 0;
    },

    /**
     * Deletes the domain unless a link of its workspace is on it, checked in the same statement (a link created
     * meanwhile keeps it). False when nothing was deleted.
     */
    async deleteDomain(workspaceId: string, id: string): Promise<boolean> {
      const rows = await orm
        .delete(domains)
        .where(
          and(
            eq(domains.id, id),
            eq(domains.workspaceId, workspaceId),
            sql`not exists (select 1 from ${links} where ${links.domain} = ${domains.hostname} and ${links.workspaceId} = ${domains.workspaceId})`,
          ),
        )
        .returning({ id: domains.id });
      return rows.length > 0;
    },
  };
}

export type WorkspacesRepository = ReturnType<typeof createWorkspacesRepository>;
