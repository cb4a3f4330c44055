/**
 * The backlog of the click stream's consumer group, as the metrics show it: entries not yet acknowledged (pending
 * plus not yet delivered, XINFO GROUPS' `pel-count` and `lag`) and the age of the oldest of them (from its entry id,
 * the time the producer added it). Read over the REST protocol (three small commands) by each consumer on a timer;
 * every consumer reports the same group-wide figures (take their max).
 */
import type { RedisRest } from '../../redis-rest.ts';

export interface StreamBacklog {
  /** Entries (each a batch of clicks) added and not yet acknowledged by the group. */
  entries: number;
  /** Milliseconds since the oldest of them was added; 0 when none waits. */
  oldestAgeMs: number;
}

/** XINFO's flat `[name, value, name, value...]` reply as a record. */
function fields(reply: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
  return out;
}

/** The ms timestamp part of a stream entry id (`1733300000000-0`). */
const idTime = (id: unknown) => (typeof id === 'string' ? Number(id.split('-')[0]) : NaN);

export async function streamBacklog(redis: RedisRest, stream: string, group: string, now = Date.now()): Promise<StreamBacklog> {
  const groups = (await redis.command<unknown[]>(['XINFO', 'GROUPS', stream])).map(fields);
  const info = groups.find((g) => g.name === group);
  if (!info) return { entries: 0, oldestAgeMs: 0 };
  const pending = Number(info['pel-count'] ?? info.pending ?? 0);
  // Redis 7 counts the entries not yet delivered; null when it cannot tell (entries deleted): then pending alone.
  const lag = typeof info.lag === 'number' ? info.lag : 0;
  let oldest = NaN;
  if (pending > 0) {
    const summary = await redis.command<unknown[]>(['XPENDING', stream, group]);
    oldest = idTime(summary[1]);
  } else if (lag > 0) {
    const next = await redis.command<unknown[][]>(['XRANGE', stream, `(${String(info['last-delivered-id'])}`, '+', 'COUNT', 1]);
    oldest = idTime(next[0]?.[0]);
  }
  return { entries: pending + lag, oldestAgeMs: Number.isFinite(oldest) ? Math.max(0, now - oldest) : 0 };
}
