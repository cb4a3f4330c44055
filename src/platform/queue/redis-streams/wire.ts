/**
 * The wire format of hop's Redis Streams click queue, shared by its producer, consumer and redrive tool: what a
 * stream entry holds, how a read reply becomes entries and messages, and what a dead-letter entry holds.
 *
 * A stream entry holds field `b`, a JSON array of messages (hop's producer), or field `m`, one JSON message (other
 * producers, an older hop, a redriven dead letter). A dead-letter entry holds `m` (the message as it was), `id` (its
 * stream entry), `index` (its place in a batch entry), `reason` (for a person), `deliveries`, `stream`, and `kind`:
 * `given-up` when storage failed it `maxDeliveries` times (worth another try once storage is back) or `refused` when
 * it was refused for what it is (not JSON, not a click event).
 */

/** The entry field that holds one JSON message. */
export const FIELD = 'm';
/** The entry field that holds a JSON array of messages. */
export const BATCH_FIELD = 'b';

/** The fields of a stream entry holding `messages`. */
export const batchEntry = (messages: readonly unknown[]) => ({ [BATCH_FIELD]: JSON.stringify(messages) });

/** The fields of a stream entry holding one message, as JSON text. */
export const messageEntry = (raw: string) => ({ [FIELD]: raw });

export interface Entry {
  id: string;
  /** The raw value; undefined when the entry has no message field, null when the entry was deleted. */
  raw: string | undefined | null;
  /** Whether `raw` is a batch (a JSON array of messages) or one message. */
  batch: boolean;
}

/** Why a message was dead-lettered: storage gave up on it, or it was refused for what it is. */
export type DeadLetterKind = 'given-up' | 'refused';

export interface DeadLetter {
  id: string;
  /** The message's position in a batch entry. */
  index?: number;
  raw: string | undefined;
  kind: DeadLetterKind;
  reason: string;
  deliveries: number;
}

/** `[[stream, [[id, [field, value, ...] | null], ...]]]` (or null) to entries. */
export function readEntries(reply: unknown): Entry[] {
  if (!Array.isArray(reply) || !reply.length) return [];
  const entries = (reply[0] as [string, Array<[string, string[] | null]>])[1] ?? [];
  return entries.map(([id, fields]) => {
    if (!fields) return { id, raw: null, batch: false };
    const at = fields.findIndex((f, i) => i % 2 === 0 && (f === FIELD || f === BATCH_FIELD));
    return at === -1 ? { id, raw: undefined, batch: false } : { id, raw: fields[at + 1], batch: fields[at] === BATCH_FIELD };
  });
}

/** An entry read: its messages, or why it cannot be delivered. */
export type Parsed = { entry: Entry; messages: unknown[]; deliveries: number } | { dead: DeadLetter } | { gone: string };

export function parseEntry(entry: Entry, deliveries: number): Parsed {
  // Deleted from the stream while pending: nothing left to deliver.
  if (entry.raw === null) return { gone: entry.id };
  const refused = (reason: string, raw = entry.raw ?? undefined): Parsed => ({
    dead: { id: entry.id, raw, kind: 'refused', reason, deliveries },
  });
  if (entry.raw === undefined) return refused(`no "${FIELD}" or "${BATCH_FIELD}" field`);
  let value: unknown;
  try {
    value = JSON.parse(entry.raw);
  } catch {
    return refused('not JSON');
  }
  if (!entry.batch) return { entry, messages: [value], deliveries };
  if (!Array.isArray(value)) return refused('not a JSON array');
  return { entry, messages: value, deliveries };
}

/** The reason of a message given up after its deliveries. */
export const givenUpReason = (deliveries: number) => `not stored after ${deliveries} deliveries`;

/** The fields of the dead-letter entry of `d`, taken from `stream`. */
export function deadLetterEntry(d: DeadLetter, stream: string): Record<string, string | number> {
  const fields: Record<string, string | number> = { [FIELD]: d.raw ?? '', id: d.id };
  if (d.index !== undefined) fields.index = d.index;
  return Object.assign(fields, { kind: d.kind, reason: d.reason, deliveries: d.deliveries, stream });
}

/**
 * A dead letter written before entries had `kind` said it only in its reason; givenUpReason has written the same
 * text ever since, so those letters are still told apart.
 */
const LEGACY_GIVEN_UP = /^not stored after \d+ deliveries$/;

/** A dead-letter entry's message and kind, from its `[field, value, ...]` list. */
export function readDeadLetter(list: readonly string[]): { raw: string; kind: DeadLetterKind } {
  const fields = new Map(list.flatMap((v, i) => (i % 2 ? [] : [[v, list[i + 1] ?? '']])));
  const kind = fields.get('kind');
  return {
    raw: fields.get(FIELD) ?? '',
    kind: kind === 'given-up' || kind === 'refused' ? kind : LEGACY_GIVEN_UP.test(fields.get('reason') ?? '') ? 'given-up' : 'refused',
  };
}
