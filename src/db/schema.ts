/**
 * drizzle tables of hop's control data: workspaces, API keys, domains, links (with their tags) and
 * idempotency records. Times are integer milliseconds since the epoch; ids are time-ordered strings.
 */
import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

const createdAt = () =>
  integer('created_at', { mode: 'timestamp_ms' })
    .notNull()
    .default(sql`(cast(unixepoch('subsec') * 1000 as integer))`);

export const workspaces = sqliteTable('workspaces', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  createdAt: createdAt(),
});

export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    workspaceId: text('workspace_id')
      .notNull()
      .references(() => workspaces.id),
    name: text('name').notNull(),
    prefix: text('prefix').notNull(),
    hash: text('hash').notNull(),
    scopes: text('scopes', { mode: 'json' }).$type<string[]>().notNull(),
    createdAt: createdAt(),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
  },
  (t) => [
    uniqueIndex('api_keys_hash_uq').on(t.hash),
    index('api_keys_workspace_created_idx').on(t.workspaceId, t.createdAt),
  ],
);

export const domains = sqliteTable(
  'domains',
  {
    id: text('id').primaryKey(),
    workspaceId: text('workspace_id')
      .notNull()
      .references(() => workspaces.id),
    hostname: text('hostname').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('domains_hostname_uq').on(t.hostname),
    index('domains_workspace_created_idx').on(t.workspaceId, t.createdAt),
  ],
);

export const links = sqliteTable(
  'links',
  {
    id: text('id').primaryKey(),
    workspaceId: text('workspace_id')
      .notNull()
      .references(() => workspaces.id),
    domain: text('domain').notNull(),
    slug: text('slug').notNull(),
    url: text('url').notNull(),
    title: text('title'),
    tags: text('tags', { mode: 'json' }).$type<string[]>().notNull().default(sql`'[]'`),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }),
    maxClicks: integer('max_clicks'),
    fallbackUrl: text('fallback_url'),
    redirectStatus: integer('redirect_status').notNull().default(302),
    cacheMaxAge: integer('cache_max_age').notNull().default(0),
    forwardQuery: integer('forward_query', { mode: 'boolean' }).notNull().default(true),
    iosUrl: text('ios_url'),
    androidUrl: text('android_url'),
    geo: text('geo', { mode: 'json' }).$type<Record<string, string>>(),
    clicks: integer('clicks').notNull().default(0),
    createdAt: createdAt(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [
    uniqueIndex('links_domain_slug_uq').on(t.domain, t.slug),
    index('links_workspace_created_idx').on(t.workspaceId, t.createdAt, t.id),
    index('links_workspace_domain_created_idx').on(t.workspaceId, t.domain, t.createdAt, t.id),
  ],
);

/** One row per (link, tag): the index behind `GET /v1/links?tag=`. */
export const linkTags = sqliteTable(
  'link_tags',
  {
    linkId: text('link_id')
      .notNull()
      .references(() => links.id, { onDelete: 'cascade' }),
    workspaceId: text('workspace_id').notNull(),
    tag: text('tag').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.linkId, t.tag] }),
    index('link_tags_workspace_tag_idx').on(t.workspaceId, t.tag, t.linkId),
  ],
);

/** A POST made with an `Idempotency-Key`: pending while it runs, then the stored response to replay. */
export const idempotencyRecords = sqliteTable(
  'idempotency_records',
  {
    workspaceId: text('workspace_id').notNull(),
    key: text('key').notNull(),
    fingerprint: text('fingerprint').notNull(),
    status: integer('status'),
    contentType: text('content_type'),
    location: text('location'),
    body: text('body'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.key] }), index('idempotency_expires_idx').on(t.expiresAt)],
);

export type WorkspaceRow = typeof workspaces.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type DomainRow = typeof domains.$inferSelect;
export type LinkRow = typeof links.$inferSelect;

/**
 * One row per click, written once: the queue delivers at least once, and `id` (made at the redirect) is the
 * deduplication key (`on conflict (id) do nothing ... returning id`): the rollups and the link's count advance, in
 * the same transaction, for exactly the rows that insert returned. No foreign key: a click may arrive
 * after its link was deleted, and must not be refused for it. No IP address is stored.
 */
export const clicks = sqliteTable(
  'clicks',
  {
    id: text('id').primaryKey(),
    workspaceId: text('workspace_id').notNull(),
    linkId: text('link_id').notNull(),
    at: integer('at', { mode: 'timestamp_ms' }).notNull(),
    country: text('country'),
    device: text('device').notNull(),
    browser: text('browser').notNull(),
    os: text('os').notNull(),
    referrer: text('referrer'),
    bot: integer('bot', { mode: 'boolean' }).notNull(),
  },
  // Every index is paid on every insert: only a link's raw export has one. The retention purge walks the primary
  // key instead, since ids are UUIDv7 and so ordered by time.
  (t) => [index('clicks_link_at_idx').on(t.linkId, t.at, t.id)],
);

/**
 * Clicks per link, per 15-minute slot (`slot`: epoch ms of its start), per dimension value, humans and bots apart:
 * what top lists sum at the ragged edges of a range. Dimensions: `country`, `device`, `browser`, `os`, `referrer`.
 * Every offset the tz database has used since 1972 is a multiple of 15 minutes, so slots add up to any zone's local
 * hours and days.
 * Kept when raw clicks expire. Keyed (link, slot, dimension, value): one link-slot's rows lie together, so a
 * consumer batch writes about one page per link it touches. No workspace column: a link belongs to one workspace,
 * checked before any read. Rows from before 0004 hold a whole UTC hour each, in that hour's first slot.
 */
export const clickRollups = sqliteTable(
  'click_rollups',
  {
    linkId: text('link_id').notNull(),
    slot: integer('slot').notNull(),
    dimension: text('dimension').notNull(),
    value: text('value').notNull(),
    humans: integer('humans').notNull().default(0),
    bots: integer('bots').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.linkId, t.slot, t.dimension, t.value] })],
);

/** A link's clicks per 15-minute slot, every dimension together: series read them as one range of the key. */
export const clickTotals = sqliteTable(
  'click_totals',
  {
    linkId: text('link_id').notNull(),
    slot: integer('slot').notNull(),
    humans: integer('humans').notNull().default(0),
    bots: integer('bots').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.linkId, t.slot] })],
);

/**
 * A link's clicks per UTC day (`day`: epoch ms of its midnight) and dimension value, the totals as dimension `all`
 * (value ''): long ranges read a row per day and value instead of 96, and the slots only for their edges.
 */
export const clickDays = sqliteTable(
  'click_days',
  {
    linkId: text('link_id').notNull(),
    day: integer('day').notNull(),
    dimension: text('dimension').notNull(),
    value: text('value').notNull(),
    humans: integer('humans').notNull().default(0),
    bots: integer('bots').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.linkId, t.day, t.dimension, t.value] })],
);

/**
 * One row: the UTC midnight (epoch ms) before which click_days and workspace_days are complete. Days from it on are
 * read from the slots; the consumer fills each day from its slots once the day has closed and moves it on, and a
 * click of a day before it (a late one) is added to both.
 */
export const rollupWatermark = sqliteTable('rollup_watermark', {
  id: integer('id').primaryKey(),
  daysUntil: integer('days_until').notNull(),
});

/** The same three tables summed over a workspace's links, so workspace statistics read as few rows as a link's do. */
export const workspaceRollups = sqliteTable(
  'workspace_rollups',
  {
    workspaceId: text('workspace_id').notNull(),
    slot: integer('slot').notNull(),
    dimension: text('dimension').notNull(),
    value: text('value').notNull(),
    humans: integer('humans').notNull().default(0),
    bots: integer('bots').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.slot, t.dimension, t.value] })],
);

export const workspaceTotals = sqliteTable(
  'workspace_totals',
  {
    workspaceId: text('workspace_id').notNull(),
    slot: integer('slot').notNull(),
    humans: integer('humans').notNull().default(0),
    bots: integer('bots').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.slot] })],
);

export const workspaceDays = sqliteTable(
  'workspace_days',
  {
    workspaceId: text('workspace_id').notNull(),
    day: integer('day').notNull(),
    dimension: text('dimension').notNull(),
    value: text('value').notNull(),
    humans: integer('humans').notNull().default(0),
    bots: integer('bots').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.day, t.dimension, t.value] })],
);

/** Requests for unknown slugs, raw (deduplicated like clicks, same retention) and rolled up per domain and 15-minute slot. */
export const orphanVisits = sqliteTable(
  'orphan_visits',
  {
    id: text('id').primaryKey(),
    domain: text('domain').notNull(),
    slug: text('slug').notNull(),
    at: integer('at', { mode: 'timestamp_ms' }).notNull(),
    bot: integer('bot', { mode: 'boolean' }).notNull(),
  },
  (t) => [index('orphan_visits_domain_at_idx').on(t.domain, t.at)],
);

export const orphanRollups = sqliteTable(
  'orphan_rollups',
  {
    domain: text('domain').notNull(),
    slot: integer('slot').notNull(),
    humans: integer('humans').notNull().default(0),
    bots: integer('bots').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.domain, t.slot] })],
);

/**
 * Control database, with HOP_DATABASE_SHARDS: which shard holds each bucket of link addresses
 * (src/platform/db/shards.ts). Written once with the first sharded start; resharding moves rows of it.
 */
export const shardBuckets = sqliteTable('shard_buckets', {
  bucket: integer('bucket').primaryKey(),
  shard: integer('shard').notNull(),
});

/**
 * Control database, with HOP_DATABASE_SHARDS: the directory of links, each one's workspace, domain and bucket. A call
 * by id reaches its shard in one read, a link keeps its id when a new address moves it to another bucket, and a
 * domain is deleted only while no row here names it, checked in the same statement as the row is written
 * (docs/architecture.md, "Shards").
 */
export const linkBuckets = sqliteTable(
  'link_buckets',
  {
    linkId: text('link_id').primaryKey(),
    workspaceId: text('workspace_id').notNull(),
    domain: text('domain').notNull(),
    bucket: integer('bucket').notNull(),
  },
  (t) => [index('link_buckets_domain_idx').on(t.domain, t.workspaceId)],
);

/**
 * Control database, once `hop reshard` has run: the shard list the bucket map's indices refer to (JSON array of
 * URLs) and an epoch every change of the map, the list or a bucket's freeze bumps. Running processes read the epoch
 * every second and reload the three on a change (src/platform/db/shard-layout.ts).
 */
export const shardLayout = sqliteTable('shard_layout', {
  id: integer('id').primaryKey(),
  epoch: integer('epoch').notNull(),
  shards: text('shards').notNull(),
});

/**
 * Control database: the resharding in progress or last done (one row): the shard list it moves from and to (JSON
 * arrays of URLs), its phase, and when it started and ended (src/platform/db/reshard.ts).
 */
export const reshardState = sqliteTable('reshard_state', {
  id: integer('id').primaryKey(),
  source: text('source').notNull(),
  target: text('target').notNull(),
  phase: text('phase').notNull(),
  startedAt: integer('started_at').notNull(),
  finishedAt: integer('finished_at'),
});

/**
 * Control database: each bucket a resharding moves, from and to which shard (indices of `shard_layout`), and its
 * phase: pending, frozen (link writes and clicks of it wait), flipped (the map names the target), cleaned (the
 * source's copy deleted). Counts and checksum as verified under the freeze.
 */
export const reshardBuckets = sqliteTable('reshard_buckets', {
  bucket: integer('bucket').primaryKey(),
  fromShard: integer('from_shard').notNull(),
  toShard: integer('to_shard').notNull(),
  phase: text('phase').notNull(),
  links: integer('links').notNull().default(0),
  clicks: integer('clicks').notNull().default(0),
  checksum: text('checksum'),
});

/**
 * On a shard: steps of a resharding done on this database in the same transaction as their writes (the additive
 * merge of a removed shard's workspace rollups), so that a rerun never repeats them.
 */
export const reshardMarks = sqliteTable('reshard_marks', {
  name: text('name').primaryKey(),
  at: integer('at').notNull(),
});

/**
 * Control database: clicks of a bucket frozen by a resharding, parked by the consumer instead of stored on either
 * shard (the row as the clicks repository stores it, JSON). `hop reshard` stores them on the bucket's shard once it
 * is flipped (deduplicated by id, like every click) and deletes them here.
 */
export const parkedClicks = sqliteTable('parked_clicks', {
  id: text('id').primaryKey(),
  bucket: integer('bucket').notNull(),
  row: text('row').notNull(),
});
