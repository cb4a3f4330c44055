/**
 * Shapes of statistics: the query of a statistics request (range, interval, time zone, top-N), of a raw click
 * export and of orphan visits, and the answers. Rules that need the clock (defaults, range bounds) are the service's.
 */
import * as z from '../../platform/zod.ts';
import { DIMENSIONS, type Dimension } from '../clicks/clicks.schemas.ts';
import { canonicalHost } from '../hosts.ts';
import { IsoDateTime, QueryInt } from '../shared.schemas.ts';
import { isTimeZone } from './stats.time.ts';

export { DIMENSIONS, type Dimension };

/** The longest range per interval: 31 days of hours (744 points), two years of days (731 points, a leap day included). */
export const MAX_RANGE_DAYS = { hour: 31, day: 731 } as const;
/** Without `from`, a range starts this long before `to`. */
export const DEFAULT_RANGE_DAYS = 7;
/** Without `interval`: hourly up to this many days, daily beyond. */
export const HOURLY_UP_TO_DAYS = 7;
export const DEFAULT_TOP = 10;
export const MAX_TOP = 100;

const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(9999, 0, 1);

const RangeTime = IsoDateTime.refine(
  (d) => d.getTime() >= EARLIEST && d.getTime() <= LATEST,
  'must be between 1970-01-01T00:00:00Z and 9999-01-01T00:00:00Z',
);

export const TimeZoneSchema = z
  .string()
  .max(64)
  .refine(isTimeZone, 'must be an IANA time zone name such as Europe/Paris or UTC')
  .openapi({ example: 'Europe/Paris' });

const Interval = z.enum(['hour', 'day'], { error: 'must be hour or day' });

const Dimensions = z
  .string()
  .max(200)
  .transform((value, ctx) => {
    const names = value.split(',');
    if (names.some((n) => !(DIMENSIONS as readonly string[]).includes(n))) {
      ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${DIMENSIONS.join(', ')}` });
      return z.NEVER;
    }
    return [...new Set(names)] as Dimension[];
  })
  .openapi({
    type: 'string',
    pattern: `^(?:${DIMENSIONS.join('|')})(?:,(?:${DIMENSIONS.join('|')}))*$`,
    example: 'country,referrer',
    description: 'Comma-separated top lists to answer (default: all); a name given twice counts once.',
  });

const rangeFields = {
  from: RangeTime.optional().openapi({
    description: `Range start, rounded down to its bucket. Default: ${DEFAULT_RANGE_DAYS} days before \`to\`.`,
  }),
  to: RangeTime.optional().openapi({ description: 'Range end (exclusive), rounded up to its bucket. Default: now.' }),
  interval: Interval.optional().openapi({
    description:
      `Default: hour up to ${HOURLY_UP_TO_DAYS} days, day beyond. ` +
      `At most ${MAX_RANGE_DAYS.hour} days hourly, ${MAX_RANGE_DAYS.day} days daily.`,
  }),
  tz: TimeZoneSchema.default('UTC').openapi({
    description:
      'IANA zone of the buckets and times (default UTC); hours and days follow the local clock in every zone, ' +
      'DST and offsets such as +05:30 and +05:45 included.',
  }),
};

export const StatsQuery = z.strictObject({
  ...rangeFields,
  top: QueryInt(0, MAX_TOP)
    .default(DEFAULT_TOP)
    .openapi({ description: `Entries per top list, 0-${MAX_TOP} (default ${DEFAULT_TOP}).` }),
  dimensions: Dimensions.optional(),
});

const OrphanDomain = z
  .string()
  .trim()
  .toLowerCase()
  .min(1, 'is required')
  .max(253)
  .regex(/^[a-z0-9.:[\]-]+$/, 'must be a hostname such as go.example.com')
  .transform(canonicalHost)
  // Matched once lower-cased: the document's pattern takes either case.
  .openapi({ pattern: '^[A-Za-z0-9.:[\\]-]+$', example: 'go.example.com' });

export const OrphansQuery = z.strictObject({
  domain: OrphanDomain,
  ...rangeFields,
  top: QueryInt(0, MAX_TOP)
    .default(DEFAULT_TOP)
    .openapi({ description: `Entries in the top list of slugs, 0-${MAX_TOP} (default ${DEFAULT_TOP}).` }),
});

export const ExportFormats = ['ndjson', 'csv'] as const;
export type ExportFormat = (typeof ExportFormats)[number];

export const ExportQuery = z.strictObject({
  format: z
    .enum(ExportFormats, { error: 'must be ndjson or csv' })
    .optional()
    .openapi({ description: 'Default: by Accept (text/csv or application/x-ndjson), else ndjson.' }),
  from: RangeTime.optional().openapi({ description: 'Clicks at or after (default: the oldest kept).' }),
  to: RangeTime.optional().openapi({ description: 'Clicks before (default: the newest).' }),
});

const Counts = { humans: z.number().int(), bots: z.number().int() };

export const TotalsSchema = z.object(Counts).openapi('StatsTotals');

const SeriesPoint = z
  .object({
    start: z.string().openapi({ format: 'date-time', example: '2026-03-29T00:00:00+01:00' }),
    ...Counts,
  })
  .openapi('StatsPoint');

const TopEntry = z
  .object({
    value: z.string().nullable().openapi({ description: 'null: unknown or none (no referrer).' }),
    ...Counts,
  })
  .openapi('StatsTopEntry');

const TopList = z.array(TopEntry).openapi({ description: 'By humans + bots, most first; ties by value, null last.' });

const rangeEcho = {
  from: z.string().openapi({ format: 'date-time', description: 'The range counted, in local time with the offset.' }),
  to: z.string().openapi({ format: 'date-time' }),
  interval: Interval,
  tz: z.string(),
  totals: TotalsSchema,
  series: z.array(SeriesPoint).openapi({
    description: 'Every bucket in order, zero-filled; `start` in local time with its offset.',
  }),
};

export const StatsSchema = z
  .object({
    ...rangeEcho,
    top: z
      .object(Object.fromEntries(DIMENSIONS.map((d) => [d, TopList.optional()])) as Record<Dimension, z.ZodOptional<typeof TopList>>)
      .openapi({ description: 'Per dimension asked for, over the whole range.' }),
  })
  .openapi('Stats');

export const OrphanStatsSchema = z
  .object({
    domain: z.string(),
    ...rangeEcho,
    top: z.object({
      slug: z.array(TopEntry).openapi({ description: 'From raw visits: only those within the click retention.' }),
    }),
  })
  .openapi('OrphanStats');

/** One raw click as exported. */
export const ExportedClickSchema = z
  .object({
    id: z.string(),
    at: z.string().openapi({ format: 'date-time' }),
    country: z.string().nullable(),
    device: z.string(),
    browser: z.string(),
    os: z.string(),
    referrer: z.string().nullable(),
    bot: z.boolean(),
  })
  .openapi('Click');

export type StatsInput = z.infer<typeof StatsQuery>;
export type OrphansInput = z.infer<typeof OrphansQuery>;
export type ExportInput = z.infer<typeof ExportQuery>;
export type Stats = z.infer<typeof StatsSchema>;
export type OrphanStats = z.infer<typeof OrphanStatsSchema>;
export type Totals = z.infer<typeof TotalsSchema>;
export type TopEntry = z.infer<typeof TopEntry>;
export type ExportedClick = z.infer<typeof ExportedClickSchema>;
