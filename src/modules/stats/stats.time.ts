/**
 * Calendar arithmetic for statistics: the buckets of a series in an IANA time zone, built from whole UTC hours
 * (what the rollups count). An hour belongs to the bucket in which it starts: exact for every zone whose offset is
 * a whole number of hours, DST included (a local day has 23, 24 or 25 hours). In a zone whose offset is not whole
 * hours (Asia/Kolkata +05:30, Australia/Adelaide +09:30/+10:30, Asia/Kathmandu +05:45) the UTC hour that contains
 * local midnight counts for the day before, so a day bucket starts at the first whole UTC hour of the local day
 * (00:30 in Kolkata), and its `start` says so.
 *
 * Intl is the only source of offsets. It is asked about once per day of the range (plus a few times per offset
 * change), never once per hour, and its formatters are kept per zone.
 */

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export const floorHour = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
export const ceilHour = (ms: number) => Math.ceil(ms / HOUR_MS) * HOUR_MS;

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
 * The zone's offsets over the whole hours of [first, last]: one sample per day, and where two samples differ, a
 * binary search for the hour the offset changed. (A zone that changes its offset twice within one day would be
 * missed; none has.)
 */
class Offsets {
  private readonly starts: number[] = [];
  private readonly offsets: number[] = [];

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
        // The first hour in (at, next] with the new offset.
        let lo = at;
        let hi = next;
        while (hi - lo > HOUR_MS) {
          const mid = floorHour(lo + (hi - lo) / 2);
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

  at(ms: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= ms) lo = mid;
      else hi = mid - 1;
    }
    return this.offsets[lo]!;
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
  /** Epoch ms of the first UTC hour in the bucket. */
  start: number;
  /** Epoch ms of the first UTC hour after it. */
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
 * The buckets covering [from, to) in `timeZone`, hourly or daily, built of whole UTC hours. `from` is rounded down
 * to the start of its bucket and `to` up to the end of the bucket holding its last moment.
 */
export function bucketize(from: number, to: number, interval: Interval, timeZone: string): Buckets {
  const firstHour = floorHour(from);
  const endHour = Math.max(ceilHour(to), firstHour + HOUR_MS);
  // A day has at most 25 hours (26 at Lord Howe's half-hour DST, counted in whole hours): look that far either side.
  const offsets = new Offsets(timeZone, firstHour - 2 * DAY_MS, endHour + 2 * DAY_MS);
  const label = (ms: number) => localIso(ms, offsets.at(ms));
  const buckets: Bucket[] = [];
  if (interval === 'hour') {
    for (let h = firstHour; h < endHour; h += HOUR_MS) buckets.push({ start: h, end: h + HOUR_MS, label: label(h) });
  } else {
    const localDay = (h: number) => Math.floor((h + offsets.at(h)) / DAY_MS);
    let start = firstHour;
    while (localDay(start - HOUR_MS) === localDay(start)) start -= HOUR_MS;
    while (start < endHour) {
      const day = localDay(start);
      let end = start + HOUR_MS;
      while (localDay(end) === day) end += HOUR_MS;
      buckets.push({ start, end, label: label(start) });
      start = end;
    }
  }
  const first = buckets[0]!;
  const last = buckets.at(-1)!;
  return { start: first.start, end: last.end, startLabel: first.label, endLabel: label(last.end), buckets };
}
