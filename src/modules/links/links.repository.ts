/** drizzle queries for links and their tags. Every management query is bound to the caller's workspace. */
import { and, desc, eq, gt, inArray, lt, or, sql, type SQL } from 'drizzle-orm';
import { domains, linkTags, links, type LinkRow } from '../../db/schema.ts';
import type { Orm } from '../../platform/db/client.ts';
import { REDIRECT_COLUMNS, type RedirectLink } from '../redirect/redirect.lookup.ts';

export interface LinkFilters {
  domain?: string | undefined;
  tag?: string | undefined;
  q?: string | undefined;
  createdAfter?: Date | undefined;
  createdBefore?: Date | undefined;
  /** Position after which the page starts: (createdAt, id) of the last row of the previous page. */
  after?: { createdAt: Date; id: string } | undefined;
  limit: number;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (m) => `\\${m}`);

const tagRows = (link: Pick<LinkRow, 'id' | 'workspaceId' | 'tags'>) =>
  link.tags.map((tag) => ({ linkId: link.id, workspaceId: link.workspaceId, tag }));

/** True in SQL while `workspaceId` owns the registered domain `hostname`. */
const owns = (workspaceId: string, hostname: string) =>
  sql`exists (select 1 from ${domains} where ${domains.hostname} = ${hostname} and ${domains.workspaceId} = ${workspaceId})`;

export function createLinksRepository(orm: Orm) {
  const redirectColumns = Object.fromEntries(REDIRECT_COLUMNS.map((c) => [c, links[c]])) as Pick<
    typeof links,
    (typeof REDIRECT_COLUMNS)[number]
  >;
  const onDomain = orm
    .select(redirectColumns)
    .from(links)
    .where(and(eq(links.slug, sql.placeholder('slug')), eq(links.domain, sql.placeholder('domain'))))
    .prepare();
  const domainOwner = orm
    .select({ workspaceId: domains.workspaceId })
    .from(domains)
    .where(eq(domains.hostname, sql.placeholder('host')))
    .prepare();

  return {
    /**
     * Inserts the link and its tags. On a registered domain (`onRegisteredDomain`), the same transaction then takes
     * the link back out unless its workspace still owns the domain, so a domain deleted between the service's check
     * and this write leaves no link behind on a host nobody owns. False when it did.
     */
    async insert(link: LinkRow, onRegisteredDomain: boolean): Promise<boolean> {
      const tags = tagRows(link);
      if (!onRegisteredDomain) {
        if (tags.length) await orm.batch([orm.insert(links).values(link), orm.insert(linkTags).values(tags)]);
        else await orm.insert(links).values(link);
        return true;
      }
      const unowned = sql`not ${owns(link.workspaceId, link.domain)}`;
      const undo = orm.delete(links).where(and(eq(links.id, link.id), unowned)).returning({ id: links.id });
      const undoTags = orm.delete(linkTags).where(and(eq(linkTags.linkId, link.id), unowned));
      const undone = tags.length
        ? (await orm.batch([orm.insert(links).values(link), orm.insert(linkTags).values(tags), undoTags, undo]))[3]
        : (await orm.batch([orm.insert(links).values(link), undo]))[1];
      return undone.length === 0;
    },

    async get(workspaceId: string, id: string): Promise<LinkRow | undefined> {
      const [row] = await orm
        .select()
        .from(links)
        .where(and(eq(links.id, id), eq(links.workspaceId, workspaceId)));
      return row;
    },

    async list(workspaceId: string, f: LinkFilters): Promise<LinkRow[]> {
      const where: SQL[] = [eq(links.workspaceId, workspaceId)];
      if (f.domain) where.push(eq(links.domain, f.domain));
      if (f.createdAfter) where.push(gt(links.createdAt, f.createdAfter));
      if (f.createdBefore) where.push(lt(links.createdAt, f.createdBefore));
      if (f.tag) {
        where.push(
          inArray(
            links.id,
            orm
              .select({ id: linkTags.linkId })
              .from(linkTags)
              .where(and(eq(linkTags.workspaceId, workspaceId), eq(linkTags.tag, f.tag))),
          ),
        );
      }
      if (f.q) {
        const pattern = `%${escapeLike(f.q.toLowerCase())}%`;
        where.push(
          sql`(lower(${links.slug}) like ${pattern} escape '\\' or lower(${links.url}) like ${pattern} escape '\\' or lower(coalesce(${links.title}, '')) like ${pattern} escape '\\')`,
        );
      }
      if (f.after) {
        const { createdAt, id } = f.after;
        where.push(or(lt(links.createdAt, createdAt), and(eq(links.createdAt, createdAt), lt(links.id, id)))!);
      }
      return orm
        .select()
        .from(links)
        .where(and(...where))
        .orderBy(desc(links.createdAt), desc(links.id))
        .limit(f.limit);
    },

    /**
     * Writes only the changed columns (never `clicks`, which the click consumer owns); when `changes.tags` is
     * given, the link's tag rows are replaced in the same batch. A move to a registered domain
     * (`toRegisteredDomain`) happens only while the workspace owns it, checked in the same statement. False when
     * nothing was written.
     */
    async update(workspaceId: string, id: string, changes: Partial<LinkRow>, toRegisteredDomain = false): Promise<boolean> {
      const where = [eq(links.id, id), eq(links.workspaceId, workspaceId)];
      if (toRegisteredDomain && changes.domain) where.push(owns(workspaceId, changes.domain));
      const update = orm
        .update(links)
        .set(changes)
        .where(and(...where))
        .returning({ id: links.id });
      if (!changes.tags) return (await update).length > 0;
      const tags = tagRows({ id, workspaceId, tags: changes.tags });
      if (toRegisteredDomain && changes.domain) {
        // Every statement on the same condition, read in the same transaction: a refused move changes no tag either.
        const owned = owns(workspaceId, changes.domain);
        const del = orm.delete(linkTags).where(and(eq(linkTags.linkId, id), eq(linkTags.workspaceId, workspaceId), owned));
        const add = orm.run(sql`insert into ${linkTags} (link_id, workspace_id, tag)
          select ${id}, ${workspaceId}, value from json_each(${JSON.stringify(changes.tags)}) where ${owned}`);
        return (await orm.batch([update, del, add]))[0].length > 0;
      }
      const del = orm.delete(linkTags).where(and(eq(linkTags.linkId, id), eq(linkTags.workspaceId, workspaceId)));
      const results = tags.length
        ? await orm.batch([update, del, orm.insert(linkTags).values(tags)])
        : await orm.batch([update, del]);
      return results[0].length > 0;
    },

    /** The deleted link's address, or undefined when there was no such link. */
    async delete(workspaceId: string, id: string): Promise<Pick<LinkRow, 'domain' | 'slug'> | undefined> {
      const [, deleted] = await orm.batch([
        orm.delete(linkTags).where(and(eq(linkTags.linkId, id), eq(linkTags.workspaceId, workspaceId))),
        orm
          .delete(links)
          .where(and(eq(links.id, id), eq(links.workspaceId, workspaceId)))
          .returning({ domain: links.domain, slug: links.slug }),
      ]);
      return deleted[0];
    },

    /** See RedirectLookup. */
    async findLink(domain: string, slug: string): Promise<RedirectLink | undefined> {
      const [link] = await onDomain.all({ slug, domain });
      return link;
    },

    async domainOwner(host: string): Promise<string | undefined> {
      return (await domainOwner.all({ host }))[0]?.workspaceId;
    },
  };
}

export type LinksRepository = ReturnType<typeof createLinksRepository>;
