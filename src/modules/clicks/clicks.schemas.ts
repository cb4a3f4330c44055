/**
 * The click event: made at the redirect, carried by the queue, checked again by the consumer (a queue message is
 * input like any other: a malformed one is dead-lettered, never half-stored). Device, browser, OS and the bot flag
 * are derived by the consumer from the user agent (clicks.classify.ts), which keeps the redirect to an id, a
 * timestamp and a push.
 */
import * as z from '../../platform/zod.ts';

/** Bounds that keep one event small; longer header values are cut at the redirect, not refused. */
export const EVENT_LIMITS = { userAgent: 512, referrer: 253, slug: 128 } as const;

const EventId = z.string().regex(/^clk_[0-9a-f]{32}$/);
const Country = z.string().regex(/^[A-Z]{2}$/).nullable();
/**
 * The redirect's span as a W3C `traceparent`, when it was traced: the consumer's batch span links to it. Optional,
 * so events made without tracing (or before it existed) stay valid.
 */
const Trace = z.string().regex(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/).optional();

export const ClickEventSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    v: z.literal(1),
    kind: z.literal('click'),
    id: EventId,
    at: z.number().int().nonnegative(),
    workspaceId: z.string().min(1).max(64),
    linkId: z.string().min(1).max(64),
    country: Country,
    userAgent: z.string().max(EVENT_LIMITS.userAgent).nullable(),
    referrer: z.string().max(EVENT_LIMITS.referrer).nullable(),
    head: z.boolean(),
    trace: Trace,
  }),
  z.strictObject({
    v: z.literal(1),
    kind: z.literal('orphan'),
    id: EventId,
    at: z.number().int().nonnegative(),
    domain: z.string().min(1).max(253),
    slug: z.string().max(EVENT_LIMITS.slug),
    userAgent: z.string().max(EVENT_LIMITS.userAgent).nullable(),
    head: z.boolean(),
    trace: Trace,
  }),
]);

export type ClickEvent = z.infer<typeof ClickEventSchema>;
export type LinkClickEvent = Extract<ClickEvent, { kind: 'click' }>;
export type OrphanEvent = Extract<ClickEvent, { kind: 'orphan' }>;

/** The six dimensions of the rollups; `all` has the empty value and counts every click. */
export const DIMENSIONS = ['country', 'device', 'browser', 'os', 'referrer'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
