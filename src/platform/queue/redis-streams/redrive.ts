/**
 * `hop redrive`: puts the click queue's dead letters back on its stream. By default only those given up after their
 * deliveries (storage failed them; worth another try once it is back), not those refused for what they are; which
 * is which is the dead letter's `kind` (wire.ts).
 */
import type { Redis } from '@upstash/redis';
import { messageEntry, readDeadLetter } from './wire.ts';

export interface RedriveOptions {
  redis: Redis;
  stream: string;
  deadLetter: string;
  /** Dead letters looked at, oldest first. */
  limit: number;
  /**
   * Also those refused for what they are (not JSON, not a click event), which will be refused again; by default
   * only those given up after their deliveries (the database failed them) go back.
   */
  all?: boolean;
}

/**
 * Puts dead letters back on the stream (one single-message entry each) and removes them from the dead-letter
 * stream, in one transaction: a message is in exactly one of the two. The consumer stores each once, as always
 * (a message stored meanwhile is a duplicate and counts nothing).
 */
export async function redriveDeadLetters(options: RedriveOptions): Promise<{ redriven: number; kept: number }> {
  const { redis, stream, deadLetter, limit, all = false } = options;
  const entries = (await redis.exec(['XRANGE', deadLetter, '-', '+', 'COUNT', String(limit)])) as Array<[string, string[]]>;
  const back: Array<{ id: string; raw: string }> = [];
  let kept = 0;
  for (const [id, list] of entries) {
    const { raw, kind } = readDeadLetter(list);
    if (!raw || (!all && kind !== 'given-up')) kept += 1;
    else back.push({ id, raw });
  }
  if (!back.length) return { redriven: 0, kept };
  const tx = redis.multi();
  for (const { raw } of back) tx.xadd(stream, '*', messageEntry(raw));
  tx.xdel(deadLetter, back.map((b) => b.id));
  await tx.exec();
  return { redriven: back.length, kept };
}
