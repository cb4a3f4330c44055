/**
 * Click storage, exactly once although the queue delivers at least once. Per ingested batch: one read finds which
 * event ids are stored already; then one atomic batch inserts the new rows (a plain insert: a row stored meanwhile
 * by another consumer fails the whole batch, which is then retried from the read) and advances the rollups, the
 * workspace rollups and the links' counts by exactly those rows. A redelivered batch finds every id stored and
 * writes nothing. Also the retention purge.
 *
 * Why not an interactive transaction: the embedded driver is synchronous, so a write from another request between
 * two awaited steps would wait on the transaction's lock while blocking the very event loop that must finish it.
 * A batch runs in one go (embedded) or one round trip (sqld, Turso). Plain SQL over a `SqlRunner` (the libSQL client,
 * or on an embedded file the runtime's prepared-statement runner): this is the hottest write path, and building
 * hundred-row statements through the query builder cost more than storing.
 */
import type { InStatement } from '@libsql/client';
import { isUniqueViolation, type Orm } from '../../platform/db/client.ts';

/** A row as a runner answers it: columns by name. */
export type SqlRow = Record<string, unknown>;

/**
 * What this repository needs of a database: the libSQL client's `execute` and `batch` (one transaction) shapes. The
 * client satisfies it as it is; src/runtimes/embedded-writer.ts is the same over statements prepared once.
 */
export interface SqlRunner {
  execute(statement: InStatement): Promise<{ rows: ArrayLike<SqlRow> }>;
  batch(statements: InStatement[], mode: 'write'): Promise<Array<{ rows: ArrayLike<SqlRow>; rowsAffected: number | bigint }>>;
}

export interface ClickRow {
  id: string;
  workspaceId: string;
  linkId: string;
  /** Epoch milliseconds. */
  at: number;
  country: string | null;
  device: string;
  browser: string;
  os: string;
  referrer: string | null;
  bot: boolean;
}

export interface OrphanRow {
  id: string;
  domain: string;
  slug: string;
  at: number;
  bot: boolean;
}

/** Rollups count per 15-minute slot (every offset the tz database has used since 1972 is a multiple of it) and per UTC day. */
const SLOT_MS = 900_000;
const DAY_MS = 86_400_000;
const slotOf = (ms: number) => ms - (ms % SLOT_MS);
const dayOf = (ms: number) => ms - (ms % DAY_MS);

/** The dimensions every click is rolled up by; `all` (value '') is the total, kept per slot in a table of its own. */
const DIMENSIONS = ['country', 'device', 'browser', 'os', 'referrer'] as const;
const DAY_DIMENSIONS = ['all', ...DIMENSIONS] as const;
type RollupDimension = (typeof DAY_DIMENSIONS)[number];
const dimensionValue = (row: ClickRow, dimension: RollupDimension): string => {
  switch (dimension) {
    case 'all':
      return '';
    case 'country':
      return row.country ?? '';
    case 'referrer':
      return row.referrer ?? '';
    default:
      return row[dimension];
  }
};

interface Counter {
  humans: number;
  bots: number;
}

const count = (c: Counter, bot: boolean) => {
  if (bot) c.bots++;
  else c.humans++;
};

/**
 * Humans and bots per (owner, period, dimension value): the key of a rollup table whose owner is a link or a
 * workspace and whose period is a slot or a day. Kept as a map per owner-period, then per dimension, of value to
 * counter: a click costs one lookup by a built key and one per dimension by values it already holds (this runs for
 * every click stored, three times).
 */
class Rollup {
  private readonly groups = new Map<string, { owner: string; period: number; values: Array<Map<string, Counter>> }>();
  private readonly dimensions: readonly RollupDimension[];

  constructor(dimensions: readonly RollupDimension[]) {
    this.dimensions = dimensions;
  }

  add(owner: string, period: number, row: ClickRow) {
    const key = `${owner}\u0000${period}`;
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = { owner, period, values: this.dimensions.map(() => new Map()) }));
    for (let d = 0; d < this.dimensions.length; d++) {
      const value = dimensionValue(row, this.dimensions[d]!);
      const values = group.values[d]!;
      let c = values.get(value);
      if (!c) values.set(value, (c = { humans: 0, bots: 0 }));
      count(c, row.bot);
    }
  }

  /** [owner, period, dimension, value, humans, bots] per counter, in key order within each owner-period. */
  rows(): unknown[][] {
    const out: unknown[][] = [];
    for (const { owner, period, values } of this.groups.values()) {
      for (let d = 0; d < this.dimensions.length; d++) {
        for (const [value, c] of values[d]!) out.push([owner, period, this.dimensions[d], value, c.humans, c.bots]);
      }
    }
    return out;
  }
}

/** Humans and bots per (owner, slot): the totals. */
class Totals {
  private readonly counters = new Map<string, Counter & { owner: string; slot: number }>();

  add(owner: string, slot: number, bot: boolean) {
    const key = `${owner}\u0000${slot}`;
    let c = this.counters.get(key);
    if (!c) this.counters.set(key, (c = { owner, slot, humans: 0, bots: 0 }));
    count(c, bot);
  }

  rows(): unknown[][] {
    return [...this.counters.values()].map((c) => [c.owner, c.slot, c.humans, c.bots]);
  }
}

/**
 * An insert of `rows` (value lists, in `columns` order) as one statement with one argument: the rows as a JSON array
 * of arrays, unpacked by SQLite (`json_each`, `->>` by position). Bound one by one, a batch of 1,000 clicks is over
 * 20,000 arguments: over HTTP (sqld, Turso) the client encodes each as a JSON object and the server decodes it, and
 * that cost more of both processes' CPU than storing the rows (docs/benchmarks.md, ingestion); and the statement's
 * text grew with its rows, so each batch size was a new statement to parse (and, embedded, to keep prepared). Here
 * one JSON.stringify encodes the batch, and each table has one statement whatever the batch's size. `->>` gives SQL
 * text, integers and NULL exactly as bound arguments would. `where true`: SQLite's documented way to let an
 * INSERT ... SELECT take an `on conflict` clause.
 */
function inserts(table: string, columns: string[], rows: unknown[][], suffix = ''): InStatement[] {
  if (!rows.length) return [];
  const values = columns.map((_, i) => `value ->> ${i}`).join(', ');
  return [{ sql: `insert into ${table} (${columns.join(', ')}) select ${values} from json_each(?) where true${suffix}`, args: [JSON.stringify(rows)] }];
}

/** Adds counted rows (key columns, then humans and bots) to a rollup table, merged on conflict of its key. */
const addToRollup = (table: string, key: string[], rows: unknown[][]) =>
  inserts(
    table,
    [...key, 'humans', 'bots'],
    rows,
    ` on conflict (${key.join(', ')}) do update set humans = humans + excluded.humans, bots = bots + excluded.bots`,
  );

/**
 * What a batch must know before it writes, in one statement (one round trip to a remote primary): which of its
 * click and orphan-visit ids are stored already, and the daily rollups' watermark (undefined when its row is gone).
 */
const STORED_AND_WATERMARK =
  "select 'c' as kind, id, null as days_until from clicks where id in (select value from json_each(?)) " +
  "union all select 'o', id, null from orphan_visits where id in (select value from json_each(?)) " +
  "union all select 'w', null, days_until from rollup_watermark where id = 1";

async function storedAndWatermark(runner: SqlRunner, clickIds: string[], orphanIds: string[]) {
  const clicks = new Set<string>();
  const orphans = new Set<string>();
  let watermark: number | undefined;
  const { rows } = await runner.execute({ sql: STORED_AND_WATERMARK, args: [JSON.stringify(clickIds), JSON.stringify(orphanIds)] });
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    if (row.kind === 'c') clicks.add(row.id as string);
    else if (row.kind === 'o') orphans.add(row.id as string);
    else watermark = Number(row.days_until);
  }
  return { clicks, orphans, watermark };
}

/** How often a batch is retried when another consumer stored some of its rows between the read and the write. */
const MAX_ATTEMPTS = 5;

const CLICK_COLUMNS = ['id', 'workspace_id', 'link_id', 'at', 'country', 'device', 'browser', 'os', 'referrer', 'bot'];
const ORPHAN_COLUMNS = ['id', 'domain', 'slug', 'at', 'bot'];
/** Each owner's three rollup tables (slots per dimension, slot totals, days per dimension), their keys, its own table. */
const OWNERS = {
  link: { rollups: 'click_rollups', totals: 'click_totals', days: 'click_days', owner: 'link_id', owners: 'links' },
  workspace: { rollups: 'workspace_rollups', totals: 'workspace_totals', days: 'workspace_days', owner: 'workspace_id', owners: 'workspaces' },
} as const;
type Owner = (typeof OWNERS)[keyof typeof OWNERS];

const WATERMARK = '(select days_until from rollup_watermark where id = 1)';

/**
 * Fills the daily rollups of the UTC days [watermark, `until`) from their slots, replacing what they held, and moves
 * the watermark to `until`. Reads the watermark inside the transaction: a consumer that filled them meanwhile leaves
 * nothing to do. Each owner's slots are one range of its key (owner, slot...): a seek per owner, once a day.
 */
function closeDays(until: number): InStatement[] {
  const out: InStatement[] = [];
  for (const { rollups, totals, days, owner, owners } of Object.values(OWNERS)) {
    out.push(
      { sql: `delete from ${days} where ${owner} in (select id from ${owners}) and day >= ${WATERMARK} and day < ?`, args: [until] },
      {
        sql:
          `insert into ${days} (${owner}, day, dimension, value, humans, bots) ` +
          `select r.${owner}, r.slot - r.slot % ${DAY_MS}, r.dimension, r.value, sum(r.humans), sum(r.bots) ` +
          `from ${owners} o join ${rollups} r on r.${owner} = o.id and r.slot >= ${WATERMARK} and r.slot < ? group by 1, 2, 3, 4`,
        args: [until],
      },
      {
        sql:
          `insert into ${days} (${owner}, day, dimension, value, humans, bots) ` +
          `select t.${owner}, t.slot - t.slot % ${DAY_MS}, 'all', '', sum(t.humans), sum(t.bots) ` +
          `from ${owners} o join ${totals} t on t.${owner} = o.id and t.slot >= ${WATERMARK} and t.slot < ? group by 1, 2`,
        args: [until],
      },
    );
  }
  out.push({ sql: 'update rollup_watermark set days_until = ? where id = 1 and days_until < ?', args: [until, until] });
  return out;
}

/** One owner's rollups of a batch, counted as its rows are added. */
class OwnerRollups {
  readonly slots = new Rollup(DIMENSIONS);
  readonly totals = new Totals();
  readonly days = new Rollup(DAY_DIMENSIONS);

  /** `daysUntil`: the day rows are kept for the days before it only (the later ones are filled when they close). */
  add(owner: string, row: ClickRow, daysUntil: number) {
    const slot = slotOf(row.at);
    this.slots.add(owner, slot, row);
    this.totals.add(owner, slot, row.bot);
    const day = dayOf(row.at);
    if (day < daysUntil) this.days.add(owner, day, row);
  }

  statements({ rollups, totals, days, owner }: Owner): InStatement[] {
    return [
      ...addToRollup(rollups, [owner, 'slot', 'dimension', 'value'], this.slots.rows()),
      ...addToRollup(totals, [owner, 'slot'], this.totals.rows()),
      ...addToRollup(days, [owner, 'day', 'dimension', 'value'], this.days.rows()),
    ];
  }
}

/**
 * The writes for rows known to be new: the rows, then the rollups, workspace rollups and link counts they add.
 * `counts` is where the link count updates start; each returns its link when the link has a maxClicks.
 *
 * Daily rollups: a click of a day before `daysUntil` (the watermark as read, or today if later) is added to its day
 * row too; today's and later ones only to the slots, their days filled from the slots once they close. A guard
 * fails the batch (as a conflict: it is retried from the read) if the watermark went past `daysUntil` meanwhile,
 * since a day filled from its slots before this batch's would then miss its clicks. When today is past the
 * watermark, the batch closes the days in between after its own writes.
 */
function statementsFor(
  newClicks: ClickRow[],
  newOrphans: OrphanRow[],
  watermark: number,
  today: number,
): { statements: InStatement[]; counts: [number, number] } {
  const daysUntil = Math.max(watermark, today);
  const links = new OwnerRollups();
  const workspaces = new OwnerRollups();
  const humansPerLink = new Map<string, number>();
  for (const row of newClicks) {
    links.add(row.linkId, row, daysUntil);
    workspaces.add(row.workspaceId, row, daysUntil);
    // The link's count is of humans: link previews and crawlers must not use up a link's maxClicks.
    if (!row.bot) humansPerLink.set(row.linkId, (humansPerLink.get(row.linkId) ?? 0) + 1);
  }
  const domains = new Totals();
  for (const row of newOrphans) domains.add(row.domain, slotOf(row.at), row.bot);
  const before = [
    // The watermark's primary key makes a moved watermark a conflict, like a row stored since the read.
    { sql: `insert into rollup_watermark (id, days_until) select 1, 0 where ${WATERMARK} > ?`, args: [daysUntil] },
    // No `on conflict`: a row stored since the read must fail the batch, or it would be counted twice.
    ...inserts('clicks', CLICK_COLUMNS, newClicks.map((r) => [r.id, r.workspaceId, r.linkId, r.at, r.country, r.device, r.browser, r.os, r.referrer, r.bot ? 1 : 0])),
    ...links.statements(OWNERS.link),
    ...workspaces.statements(OWNERS.workspace),
  ];
  // One statement for every link's count (UPDATE ... FROM, SQLite 3.33+): a statement per link cost more than the
  // rows it changed.
  const perLink = [...humansPerLink];
  const counts: InStatement[] = perLink.length
    ? [
        {
          sql:
            'update links set clicks = clicks + v.n from (select value ->> 0 as id, value ->> 1 as n from json_each(?)) as v ' +
            'where links.id = v.id returning links.domain as domain, links.slug as slug, links.max_clicks as max_clicks',
          args: [JSON.stringify(perLink)],
        },
      ]
    : [];
  const statements = [
    ...before,
    ...counts,
    ...inserts('orphan_visits', ORPHAN_COLUMNS, newOrphans.map((r) => [r.id, r.domain, r.slug, r.at, r.bot ? 1 : 0])),
    ...addToRollup('orphan_rollups', ['domain', 'slot'], domains.rows()),
    ...(today > watermark ? closeDays(today) : []),
  ];
  return { statements, counts: [before.length, before.length + counts.length] };
}

export interface IngestStored {
  clicks: number;
  orphans: number;
  /** Links with a maxClicks whose count this batch moved: cached copies hold an old count (redirect.cache.ts). */
  limited: Array<{ domain: string; slug: string }>;
}

/** `runner`: how the SQL runs; the ORM's libSQL client unless the runtime has a faster one for this database. */
export function createClicksRepository(orm: Orm, runner: SqlRunner = orm.$client) {
  const client = runner;
  return {
    /** Stores one batch atomically. Returns how many clicks and orphan visits were new (not stored before). */
    async ingest(clickRows: ClickRow[], orphanRows: OrphanRow[]): Promise<IngestStored> {
      for (let attempt = 1; ; attempt++) {
        const stored = await storedAndWatermark(client, clickRows.map((r) => r.id), orphanRows.map((r) => r.id));
        const newClicks = clickRows.filter((r) => !stored.clicks.has(r.id));
        const newOrphans = orphanRows.filter((r) => !stored.orphans.has(r.id));
        if (!newClicks.length && !newOrphans.length) return { clicks: 0, orphans: 0, limited: [] };
        // No watermark row (a database it was deleted from): every day is kept on every batch, and none is filled.
        const until = stored.watermark ?? Number.MAX_SAFE_INTEGER;
        const { statements, counts } = statementsFor(newClicks, newOrphans, until, dayOf(Date.now()));
        try {
          const results = await client.batch(statements, 'write');
          const limited = results
            .slice(...counts)
            .flatMap((r) => Array.from(r.rows))
            .filter((row) => row.max_clicks !== null)
            .map((row) => ({ domain: String(row.domain), slug: String(row.slug) }));
          return { clicks: newClicks.length, orphans: newOrphans.length, limited };
        } catch (err) {
          if (!isUniqueViolation(err) || attempt === MAX_ATTEMPTS) throw err;
        }
      }
    },

    /**
     * Deletes raw clicks and orphan visits older than `before`, at most `limit` of each; rollups stay. Ids are
     * UUIDv7 made with the event, so "older than" is a range of the primary key: no index on the time is paid for.
     */
    async purge(before: Date, limit: number): Promise<number> {
      const bound = `clk_${before.getTime().toString(16).padStart(12, '0')}`;
      const [a, b] = await client.batch(
        [
          { sql: 'delete from clicks where id in (select id from clicks where id < ? limit ?)', args: [bound, limit] },
          { sql: 'delete from orphan_visits where id in (select id from orphan_visits where id < ? limit ?)', args: [bound, limit] },
        ],
        'write',
      );
      return Number(a!.rowsAffected) + Number(b!.rowsAffected);
    },
  };
}

export type ClicksRepository = ReturnType<typeof createClicksRepository>;
