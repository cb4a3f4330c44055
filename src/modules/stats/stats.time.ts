/**
 * Calendar arithmetic for statistics: the buckets of a series in an IANA time zone, built from 15-minute UTC slots
 * (what the rollups count). Every offset the tz database has used since 1972 is a multiple of 15 minutes, so local
 * hours and days are whole runs of slots in every zone: Asia/Kolkata (+05:30), Asia/Kathmandu (+05:45),
 * Australia/Lord_Howe (a 30-minute DST), DST days of 23 and 25 hours. A slot belongs to the bucket in which it
 * starts (this only matters for the odd offsets of local mean time before 1972, such as Monrovia's -00:44:30).
 *
 * Intl is the only source of offsets. It is asked about once per day of the range (plus a few times per offset
 * change), never once per slot, and its formatters are kept per zone.
 */

export const SLOT_MS = 900_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export const floorSlot = (ms: number) => Math.floor(ms / SLOT_MS) * SLOT_MS;
export const ceilSlot = (ms: number) => Math.ceil(ms / SLOT_MS) * SLOT_MS;

// Building a formatter costs ~40 µs; a zone is asked for again and again. Emptied when full, like the UA memo.
const MAX_FORMATTERS = 256;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Throws a RangeError for a zone the runtime does not know.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size >= MAX_FORMATTERS) formatters.clear();
    formatters.set(timeZone, f);
  }
  return f;
}

/** Names an IANA zone (`Europe/Paris`, `UTC`, `Etc/GMT+5`) the runtime knows; fixed offsets such as `+02:00` are not. */
export function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(name)) return false;
  try {
    formatter(name);
    return true;
  } catch {
    return false;
  }
}

const UTC_NAMES = new Set(['utc', 'etc/utc', 'etc/uct', 'uct', 'gmt', 'etc/gmt', 'etc/zulu', 'zulu', 'universal', 'etc/universal']);
const isUtc = (timeZone: string) => UTC_NAMES.has(timeZone.toLowerCase());

// en-US with h23: "3/29/2026, 01:00:00". Any separators are accepted: only the digit groups count.
const PARTS = /(\d+)\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)/;

/** The zone's offset from UTC at `ms`, in milliseconds (local = UTC + offset). */
function offsetAt(f: Intl.DateTimeFormat, ms: number): number {
  const m = PARTS.exec(f.format(ms));
  if (!m) throw new Error(`unexpected date format from Intl: ${f.format(ms)}`);
  const local = Date.UTC(Number(m[3]), Number(m[1]) - 1, Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6]));
  return local - Math.floor(ms / 1000) * 1000;
}

/**
 * The zone's offsets over the slots of [first, last]: one sample per day, and where two samples differ, a binary
 * search for the slot the offset changed. (A zone that changes its offset twice within one day would be missed;
 * none has.)
 */
class Offsets {
  /** Where each offset starts (a slot), ascending; the first covers everything before the second. */
  readonly starts: number[] = [];
  readonly offsets: number[] = [];

  constructor(timeZone: string, first: number, last: number) {
    if (isUtc(timeZone)) {
      this.starts.push(first);
      this.offsets.push(0);
      return;
    }
    const f = formatter(timeZone);
    let at = first;
    let offset = offsetAt(f, at);
    this.starts.push(at);
    this.offsets.push(offset);
    while (at < last) {
      const next = Math.min(at + DAY_MS, last);
      const nextOffset = offsetAt(f, next);
      if (nextOffset !== offset) {
        // The first slot in (at, next] with the new offset.
        let lo = at;
        let hi = next;
        while (hi - lo > SLOT_MS) {
          const mid = floorSlot(lo + (hi - lo) / 2);
          if (offsetAt(f, mid) === offset) lo = mid;
          else hi = mid;
        }
        this.starts.push(hi);
        this.offsets.push(nextOffset);
        offset = nextOffset;
      }
      at = next;
    }
  }

  /** The index of the offset in force at `ms`. */
  indexAt(ms: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= ms) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  at(ms: number): number {
    return this.offsets[this.indexAt(ms)]!;
  }
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `2026-03-29T03:00:00+02:00`: the instant `ms` as local time in a zone at `offset` (rounded to minutes). */
export function localIso(ms: number, offset: number): string {
  const minutes = Math.round(offset / 60_000);
  const local = new Date(ms + minutes * 60_000).toISOString().slice(0, 19);
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${local}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export type Interval = 'hour' | 'day';

export interface Bucket {
  /** Epoch ms of the first slot in the bucket. */
  start: number;
  /** Epoch ms of the first slot after it. */
  end: number;
  /** `start` as ISO-8601 local time with the zone's offset. */
  label: string;
}

export interface Buckets {
  /** The range actually counted: the start of the bucket holding `from`, the end of the one holding `to`'s last moment. */
  start: number;
  end: number;
  startLabel: string;
  endLabel: string;
  buckets: Bucket[];
}

/**
 * The slot at which the bucket after the one starting at `start` begins: the first slot whose local hour (or day)
 * differs from `start`'s, or, for hours, where the clock goes back (the repeated hour of a fall-back is a bucket of
 * its own). Jumps from one candidate to the next: the next local boundary at the current offset, or the next change
 * of offset, whichever comes first.
 */
function nextBoundary(offsets: Offsets, start: number, period: number): number {
  let i = offsets.indexAt(start);
  const key = Math.floor((start + offsets.offsets[i]!) / period);
  for (;;) {
    const offset = offsets.offsets[i]!;
    const boundary = ceilSlot((key + 1) * period - offset);
    const change = offsets.starts[i + 1];
    if (change === undefined || boundary <= change) return boundary;
    const after = offsets.offsets[i + 1]!;
    if (Math.floor((change + after) / period) !== key || (period === HOUR_MS && after < offset)) return change;
    i++;
  }
}

/**
 * The buckets covering [from, to) in `timeZone`, hourly or daily, built of slots. `from` is rounded down to the
 * start of its bucket and `to` up to the end of the bucket holding its last moment.
 */
export function bucketize(from: number, to: number, interval: Interval, timeZone: string): Buckets {
  const period = interval === 'hour' ? HOUR_MS : DAY_MS;
  const firstSlot = floorSlot(from);
  const endSlot = Math.max(ceilSlot(to), firstSlot + SLOT_MS);
  // A day has at most 26 hours (25 hours, or Lord Howe's 30-minute DST): look that far either side.
  const offsets = new Offsets(timeZone, firstSlot - 2 * DAY_MS, endSlot + 2 * DAY_MS);
  const label = (ms: number) => localIso(ms, offsets.at(ms));
  // The bucket holding `from` starts at the last boundary at or before it: found walking forward from a bucket
  // that surely starts earlier (a bucket lasts at most 26 hours).
  let start = nextBoundary(offsets, floorSlot(from - period - 3 * HOUR_MS), period);
  for (let next = nextBoundary(offsets, start, period); next <= firstSlot; next = nextBoundary(offsets, start, period)) start = next;
  const buckets: Bucket[] = [];
  while (start < endSlot) {
    const end = nextBoundary(offsets, start, period);
    buckets.push({ start, end, label: label(start) });
    start = end;
  }
  const first = buckets[0]!;
  const last = buckets.at(-1)!;
  return { start: first.start, end: last.end, startLabel: first.label, endLabel: label(last.end), buckets };
}

/**
 * How a count up to the instant `t` (a slot) is made of daily rollups and slots: the days before `day`, plus
 * (`sign` 1) or minus (`sign` -1) the slots of [`edge[0]`, `edge[1]`), whichever of the two sides of `t`'s UTC day
 * is shorter: at most 12 hours of slots, none at a UTC midnight.
 */
export interface Cut {
  day: number;
  edge: [number, number] | undefined;
  sign: 1 | -1;
}

export function cutAt(t: number): Cut {
  const day = Math.floor(t / DAY_MS) * DAY_MS;
  if (t === day) return { day, edge: undefined, sign: 1 };
  if (t - day <= DAY_MS / 2) return { day, edge: [day, t], sign: 1 };
  return { day: day + DAY_MS, edge: [t, day + DAY_MS], sign: -1 };
}
