/**
 * Business rules of links: create (with generated slugs), read, list with cursor pagination, update and delete,
 * with the input rules that need the database (owned domains, no redirects to hop's own hosts).
 */
import type { Config } from '../../config.ts';
import type { LinkRow } from '../../db/schema.ts';
import { AppError, invalidFields } from '../../errors.ts';
import { isUniqueViolation } from '../../platform/db/client.ts';
import { newId, randomBase62 } from '../../platform/crypto.ts';
import type { ServiceContext } from '../context.ts';
import { canonicalHost, isLoopbackHost } from '../hosts.ts';
import type { WorkspacesService } from '../workspaces/workspaces.service.ts';
import type { LinksRepository } from './links.repository.ts';
import {
  GENERATED_SLUG_LENGTH,
  isReservedSlug,
  type CreateLinkInput,
  type Link,
  type ListLinksInput,
  type UpdateLinkInput,
} from './links.schemas.ts';

const SLUG_ATTEMPTS = 5;

interface RuleInput {
  url?: string | undefined;
  fallbackUrl?: string | null | undefined;
  iosUrl?: string | null | undefined;
  androidUrl?: string | null | undefined;
  geo?: Record<string, string> | null | undefined;
  domain?: string | undefined;
  expiresAt?: Date | null | undefined;
}

/** What a link holds in every optional field its creator leaves out. */
export function linkDefaults(): Omit<LinkRow, 'id' | 'workspaceId' | 'domain' | 'slug' | 'url' | 'createdAt' | 'updatedAt'> {
  return {
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
  };
}

export function encodeCursor(row: Pick<LinkRow, 'createdAt' | 'id'>): string {
  return btoa(`${row.createdAt.getTime()}.${row.id}`).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const bad = () => invalidFields([{ field: 'cursor', message: 'is not a cursor this API returned' }]);
  let text: string;
  try {
    text = atob(cursor.replaceAll('-', '+').replaceAll('_', '/'));
  } catch {
    throw bad();
  }
  const match = /^(\d{1,15})\.([A-Za-z0-9_]{1,64})$/.exec(text);
  if (!match) throw bad();
  return { createdAt: new Date(Number(match[1])), id: match[2]! };
}

/** What the link cache must hear about (src/modules/redirect/redirect.cache.ts); resolves once the shared tier knows. */
export interface LinkInvalidation {
  links(refs: Array<Pick<LinkRow, 'domain' | 'slug'>>): Promise<void>;
}

export function createLinksService(
  repo: LinksRepository,
  workspaces: WorkspacesService,
  config: Config,
  invalidation: LinkInvalidation,
) {
  const shortUrl = (row: Pick<LinkRow, 'domain' | 'slug'>) =>
    row.domain === config.defaultDomain ? `${config.baseUrl}/${row.slug}` : `https://${row.domain}/${row.slug}`;

  const toLink = (row: LinkRow): Link => ({
    id: row.id,
    domain: row.domain,
    slug: row.slug,
    shortUrl: shortUrl(row),
    url: row.url,
    title: row.title,
    tags: row.tags,
    expiresAt: row.expiresAt?.toISOString() ?? null,
    maxClicks: row.maxClicks,
    fallbackUrl: row.fallbackUrl,
    redirectStatus: row.redirectStatus,
    cacheMaxAge: row.cacheMaxAge,
    forwardQuery: row.forwardQuery,
    iosUrl: row.iosUrl,
    androidUrl: row.androidUrl,
    geo: row.geo ?? {},
    clicks: row.clicks,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  });

  const NOT_OWN_DOMAIN = 'is not a domain of this workspace (add it with POST /v1/domains)';
  /** The domain was deleted between the check and the write (the write checks again, in its transaction). */
  const domainGone = () => invalidFields([{ field: 'domain', message: NOT_OWN_DOMAIN }]);
  const registered = (domain: string | undefined) => domain !== undefined && domain !== config.defaultDomain;

  /** Field errors for the rules zod cannot check alone: owned domain, own hosts as targets, past expiry. */
  async function checkRules(ctx: ServiceContext, input: RuleInput) {
    const errors: Array<{ field: string; message: string }> = [];
    const ownHosts = await workspaces.shortLinkHosts(ctx);
    if (input.domain !== undefined && !ownHosts.has(input.domain)) {
      errors.push({ field: 'domain', message: NOT_OWN_DOMAIN });
    }
    const targets: Array<[string, string | null | undefined]> = [
      ['url', input.url],
      ['fallbackUrl', input.fallbackUrl],
      ['iosUrl', input.iosUrl],
      ['androidUrl', input.androidUrl],
      ...Object.entries(input.geo ?? {}).map(([country, url]): [string, string] => [`geo.${country}`, url]),
    ];
    for (const [field, url] of targets) {
      const host = url ? canonicalHost(new URL(url).hostname) : undefined;
      if (host && (ownHosts.has(host) || isLoopbackHost(host))) {
        errors.push({ field, message: 'must not point at a short-link host of hop (it would loop)' });
      }
    }
    if (input.expiresAt && input.expiresAt.getTime() <= ctx.now().getTime()) {
      errors.push({ field: 'expiresAt', message: 'must be in the future' });
    }
    if (errors.length) throw invalidFields(errors);
  }

  const slugTaken = (row: Pick<LinkRow, 'domain' | 'slug'>) =>
    new AppError('conflict', `The slug "${row.slug}" is already taken on ${row.domain}.`);

  return {
    /**
     * `seed` (from an Idempotency-Key) fixes the link's id: a retry of a create whose outcome was unknown then
     * collides with the first attempt's row, if it was stored, and answers it instead of storing a second link.
     */
    async create(ctx: ServiceContext, input: CreateLinkInput, seed?: string): Promise<Link> {
      await checkRules(ctx, input);
      const now = ctx.now();
      const geo = input.geo && Object.keys(input.geo).length ? input.geo : null;
      // zod leaves out the keys a client did not send, so spreading the input keeps the defaults for those.
      const { domain, slug, geo: _geo, ...given } = input;
      // A seeded id that is already taken belongs to an earlier attempt of this very request.
      const storedBefore = async () => {
        if (!seed) return undefined;
        const earlier = await repo.get(ctx.workspaceId, row.id);
        return earlier ? toLink(earlier) : undefined;
      };
      const row: LinkRow = {
        ...linkDefaults(),
        ...given,
        id: seed ? `lnk_${seed.slice(0, 32)}` : newId('lnk'),
        workspaceId: ctx.workspaceId,
        domain: domain ?? config.defaultDomain,
        slug: slug ?? '',
        geo,
        createdAt: now,
        updatedAt: now,
      };
      if (input.slug !== undefined) {
        try {
          if (!(await repo.insert(row, registered(row.domain)))) throw domainGone();
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
          const earlier = await storedBefore();
          if (earlier) return earlier;
          throw slugTaken(row);
        }
        // A "no such link" answer may be cached for this slug.
        await invalidation.links([row]);
        return toLink(row);
      }
      for (let attempt = 0; attempt < SLUG_ATTEMPTS; attempt++) {
        row.slug = randomBase62(GENERATED_SLUG_LENGTH);
        if (isReservedSlug(row.slug)) continue;
        try {
          if (!(await repo.insert(row, registered(row.domain)))) throw domainGone();
          await invalidation.links([row]);
          return toLink(row);
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
          const earlier = await storedBefore();
          if (earlier) return earlier;
        }
      }
      throw new AppError('unavailable', 'Could not find a free slug; try again or choose one.');
    },

    async get(ctx: ServiceContext, id: string): Promise<Link> {
      const row = await repo.get(ctx.workspaceId, id);
      if (!row) throw new AppError('not_found', 'No such link.');
      return toLink(row);
    },

    async list(ctx: ServiceContext, query: ListLinksInput): Promise<{ data: Link[]; nextCursor: string | null }> {
      const rows = await repo.list(ctx.workspaceId, {
        domain: query.domain,
        tag: query.tag,
        q: query.q,
        createdAfter: query.createdAfter,
        createdBefore: query.createdBefore,
        after: query.cursor ? decodeCursor(query.cursor) : undefined,
        limit: query.limit + 1,
      });
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return { data: page.map(toLink), nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
    },

    async update(ctx: ServiceContext, id: string, patch: UpdateLinkInput): Promise<Link> {
      const current = await repo.get(ctx.workspaceId, id);
      if (!current) throw new AppError('not_found', 'No such link.');
      // The targets as they will be, not only those sent: moving a link to a new domain can make its old url loop.
      const merged = <K extends 'url' | 'fallbackUrl' | 'iosUrl' | 'androidUrl' | 'geo'>(field: K) =>
        patch[field] === undefined ? current[field] : patch[field];
      await checkRules(ctx, {
        url: merged('url') ?? undefined,
        fallbackUrl: merged('fallbackUrl'),
        iosUrl: merged('iosUrl'),
        androidUrl: merged('androidUrl'),
        geo: merged('geo'),
        domain: patch.domain,
        expiresAt: patch.expiresAt,
      });
      const changes: Partial<LinkRow> = { updatedAt: ctx.now() };
      for (const [key, value] of Object.entries(patch)) {
        if (value !== undefined) (changes as Record<string, unknown>)[key] = value;
      }
      if (changes.geo && Object.keys(changes.geo).length === 0) changes.geo = null;
      if (changes.tags && changes.tags.join('\n') === current.tags.join('\n')) delete changes.tags;
      const next: LinkRow = { ...current, ...changes };
      try {
        if (!(await repo.update(ctx.workspaceId, id, changes, registered(changes.domain)))) {
          if (registered(changes.domain) && (await repo.get(ctx.workspaceId, id))) throw domainGone();
          throw new AppError('not_found', 'No such link.');
        }
      } catch (err) {
        if (isUniqueViolation(err)) throw slugTaken(next);
        throw err;
      }
      // The old address (it may now be free) and the new one (it may hold a cached "no such link").
      await invalidation.links(current.domain === next.domain && current.slug === next.slug ? [next] : [current, next]);
      return toLink(next);
    },

    async delete(ctx: ServiceContext, id: string): Promise<void> {
      const deleted = await repo.delete(ctx.workspaceId, id);
      if (!deleted) throw new AppError('not_found', 'No such link.');
      await invalidation.links([deleted]);
    },
  };
}

export type LinksService = ReturnType<typeof createLinksService>;
