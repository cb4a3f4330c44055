/**
 * The consumer of the Redis Streams click queue: one consumer (a unique name per process) of a consumer group shared
 * by every process, so N processes share the work. It reads up to `batchSize` new entries (XREADGROUP ... BLOCK),
 * hands them to the handler, and only once the handler has resolved (the batch is committed) acknowledges and
 * deletes them (XACK + XDEL in one MULTI/EXEC): delivery is at least once, and the handler makes storage exactly
 * once. A message the handler refuses and one that is not JSON go to the dead-letter stream as `refused`, one
 * delivered more than `maxDeliveries` times as `given-up` (wire.ts), in the same transaction as their
 * acknowledgement. When the handler fails (database down) nothing is acknowledged: the consumer reads nothing new
 * and retries its own pending entries with backoff, the whole batch once, then one entry at a time, so one entry that
 * always fails is dead-lettered alone and its batch-mates are stored; past `maxDeliveries` a batch entry's messages
 * are tried one by one, once, and only those that fail are dead-lettered. Each handler call gets whole entries, at
 * most `batchSize` messages (an entry is never split). Entries left pending by a consumer that died are taken over
 * by the others (XAUTOCLAIM) once idle for `claimIdleMs`, and its name leaves the group once it holds nothing and has
 * been silent for `forgetAfterMs`. The stream belongs to this one group: acknowledged entries are deleted, not left
 * for other groups.
 */
import type { Redis } from '@upstash/redis';
import type { Logger } from '../../logger.ts';
import { createBackoff, withDeadline } from '../../resilience.ts';
import type { BatchHandler } from '../queue.ts';
import {
  deadLetterEntry,
  givenUpReason,
  parseEntry,
  readEntries,
  type DeadLetter,
  type DeadLetterKind,
  type Entry,
  type Parsed,
} from './wire.ts';

export interface RedisStreamsConsumerOptions {
  redis: Redis;
  stream: string;
  group: string;
  /** The dead-letter stream (its entries: wire.ts). */
  deadLetter: string;
  handle: BatchHandler<unknown>;
  logger: Logger;
  /** Unique per process; a random one by default. */
  consumer?: string;
  batchSize?: number;
  /** How long a read waits for new entries (XREADGROUP BLOCK). */
  blockMs?: number;
  /** Deliveries after which an entry that was never stored goes to the dead-letter stream. */
  maxDeliveries?: number;
  /** How long an entry stays pending with a silent consumer before another takes it over. */
  claimIdleMs?: number;
  /** First and longest wait after a failure (doubling in between). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Other consumers silent this long with nothing pending (processes that died) are removed from the group. */
  forgetAfterMs?: number;
}

export interface ConsumerStats {
  /** Messages acknowledged after the handler stored them (duplicates included). */
  acked: number;
  /** Messages dead-lettered. */
  deadLettered: number;
  /** Entries taken over from silent consumers. */
  claimed: number;
  /** Handler failures (nothing acknowledged) and Redis failures. */
  handlerFailures: number;
  redisFailures: number;
  /** True while this consumer is retrying its own pending entries. */
  retrying: boolean;
}

export interface RedisStreamsConsumer {
  readonly name: string;
  /** Starts the read loop (idempotent). */
  start(): void;
  /**
   * Stops: the batch in hand is finished and acknowledged, no new one is read. Resolves once the loop has ended or
   * the deadline has passed (what is left pending is taken over by another consumer later).
   */
  stop(deadlineMs?: number): Promise<void>;
  stats(): ConsumerStats;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function createRedisStreamsConsumer(options: RedisStreamsConsumerOptions): RedisStreamsConsumer {
  const { redis, stream, group, deadLetter, handle, logger } = options;
  const name = options.consumer ?? `hop-${crypto.randomUUID().slice(0, 8)}`;
  const batchSize = options.batchSize ?? 100;
  const blockMs = options.blockMs ?? 1000;
  const maxDeliveries = options.maxDeliveries ?? 5;
  const claimIdleMs = options.claimIdleMs ?? 60_000;
  const claimEveryMs = Math.max(250, Math.min(claimIdleMs / 2, 30_000));
  const retryBaseMs = options.retryBaseMs ?? 500;
  const retryMaxMs = options.retryMaxMs ?? 30_000;
  const forgetAfterMs = options.forgetAfterMs ?? 3_600_000;

  const counts = { acked: 0, deadLettered: 0, claimed: 0, handlerFailures: 0, redisFailures: 0 };
  let groupReady = false;
  let nextClaimAt = 0;
  let claimCursor = '0-0';
  // Retrying own pending entries: read from after `cursor`, one at a time once `isolate` is set.
  let retrying = true; // a consumer that reuses a name first finishes what that name left pending
  let cursor = '0';
  let isolate = false;
  const backoff = createBackoff({ firstMs: retryBaseMs, maxMs: retryMaxMs });
  let stopping = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  async function ensureGroup() {
    try {
      // From the start of the stream, not `$`: after Redis lost the group (a restart without persistence),
      // entries added before it was made again are still read.
      await redis.xgroup(stream, { type: 'CREATE', group, id: '0', options: { MKSTREAM: true } });
    } catch (err) {
      if (!message(err).includes('BUSYGROUP')) throw err;
    }
    groupReady = true;
  }

  /** Takes over entries idle longer than claimIdleMs; JUSTID: counted as a delivery when read, not twice. */
  async function claim() {
    const reply = (await redis.xautoclaim(stream, group, name, claimIdleMs, claimCursor, {
      count: batchSize,
      justId: true,
    })) as [string, string[]];
    claimCursor = reply[0];
    nextClaimAt = claimCursor === '0-0' ? Date.now() + claimEveryMs : 0;
    if (claimCursor === '0-0') await forgetSilentConsumers();
    if (reply[1].length) {
      counts.claimed += reply[1].length;
      logger.log('info', 'queue entries taken over from a silent consumer', { stream, consumer: name, count: reply[1].length });
      if (!retrying) cursor = '0';
      retrying = true;
    }
  }

  /**
   * Removes the names of consumers that died with nothing pending (after a claim round took their entries).
   * Housekeeping only: a failure here never holds up the work.
   */
  async function forgetSilentConsumers() {
    try {
      const consumers = (await redis.xinfo(stream, { type: 'CONSUMERS', group })) as unknown[][];
      const silent = consumers
        .map((fields) => Object.fromEntries(fields.flatMap((v, i) => (i % 2 ? [] : [[String(v), fields[i + 1]]]))))
        .filter((c) => c.name !== name && Number(c.pending) === 0 && Number(c.idle) > forgetAfterMs)
        .map((c) => String(c.name));
      if (!silent.length) return;
      const pipeline = redis.pipeline();
      for (const consumer of silent) pipeline.xgroup(stream, { type: 'DELCONSUMER', group, consumer });
      await pipeline.exec();
      logger.log('info', 'silent queue consumers removed from the group', { stream, consumers: silent });
    } catch (err) {
      logger.log('debug', 'could not tidy the queue consumer list', { stream, error: message(err) });
    }
  }

  /** This consumer's pending entries after `cursor`, with how often each has been delivered (this read included). */
  async function readPending(count: number): Promise<{ entries: Entry[]; deliveries: Map<string, number> }> {
    const [read, pending] = (await redis
      .pipeline()
      .xreadgroup(group, name, stream, cursor, { count })
      .xpending(stream, group, cursor === '0' ? '-' : `(${cursor}`, '+', count, { consumer: name })
      .exec()) as [unknown, Array<[string, string, number, number]>];
    return { entries: readEntries(read), deliveries: new Map(pending.map(([id, , , n]) => [id, n])) };
  }

  /** Dead letters and acknowledgements in one transaction: an entry is either both or neither. */
  async function commit(ids: string[], dead: DeadLetter[], stored: number) {
    if (!ids.length) return;
    const tx = redis.multi();
    for (const d of dead) tx.xadd(deadLetter, '*', deadLetterEntry(d, stream));
    tx.xack(stream, group, ids);
    tx.xdel(stream, ids);
    await tx.exec();
    counts.acked += stored;
    counts.deadLettered += dead.length;
    for (const d of dead) logger.log('warn', 'queue message dead-lettered', { stream, deadLetter, id: d.id, index: d.index, kind: d.kind, reason: d.reason });
  }

  type Ready = Extract<Parsed, { messages: unknown[] }>;

  const deadMessage = (p: Ready, index: number, kind: DeadLetterKind, reason: string): DeadLetter =>
    p.entry.batch
      ? { id: p.entry.id, index, raw: JSON.stringify(p.messages[index]), kind, reason, deliveries: p.deliveries }
      : { id: p.entry.id, raw: p.entry.raw!, kind, reason, deliveries: p.deliveries };

  /** Whole entries, at most `batchSize` messages together (an entry larger than that alone). */
  function* handlerBatches(ready: Ready[]): Generator<Ready[]> {
    let chunk: Ready[] = [];
    let size = 0;
    for (const p of ready) {
      if (chunk.length && size + p.messages.length > batchSize) {
        yield chunk;
        chunk = [];
        size = 0;
      }
      chunk.push(p);
      size += p.messages.length;
    }
    if (chunk.length) yield chunk;
  }

  /** Handles one read; returns whether the handler stored all of it (false: what is left stays pending for a retry). */
  async function deliver(entries: Entry[], deliveries: Map<string, number>): Promise<boolean> {
    const ids: string[] = [];
    const dead: DeadLetter[] = [];
    let storedMessages = 0;
    const ready: Ready[] = [];
    const lastTry: Ready[] = [];
    for (const entry of entries) {
      const n = deliveries.get(entry.id) ?? 1;
      const parsed = parseEntry(entry, n);
      if ('gone' in parsed) ids.push(parsed.gone);
      else if ('dead' in parsed) {
        ids.push(entry.id);
        dead.push(parsed.dead);
      } else if (n <= maxDeliveries) ready.push(parsed);
      else if (entry.batch) lastTry.push(parsed);
      else {
        ids.push(entry.id);
        dead.push(deadMessage(parsed, 0, 'given-up', givenUpReason(n - 1)));
      }
    }
    let stored = true;
    for (const chunk of handlerBatches(ready)) {
      try {
        const { rejected } = await handle(chunk.flatMap((p) => p.messages));
        const refused = new Map(rejected.map((r) => [r.index, r.reason]));
        let offset = 0;
        for (const p of chunk) {
          p.messages.forEach((_, i) => {
            const reason = refused.get(offset + i);
            if (reason === undefined) storedMessages += 1;
            else dead.push(deadMessage(p, i, 'refused', reason));
          });
          offset += p.messages.length;
          ids.push(p.entry.id);
        }
        backoff.reset();
      } catch (err) {
        stored = false;
        counts.handlerFailures += 1;
        logger.log('warn', 'queue batch not stored; will retry', {
          stream,
          consumer: name,
          size: chunk.reduce((n, p) => n + p.messages.length, 0),
          retryInMs: backoff.fail(),
          error: message(err),
        });
        break;
      }
    }
    // A batch entry past its deliveries: its messages one by one, once; only those that still fail are given up.
    for (const p of lastTry) {
      for (let i = 0; i < p.messages.length; i++) {
        try {
          const { rejected } = await handle([p.messages[i]]);
          if (rejected.length) dead.push(deadMessage(p, i, 'refused', rejected[0]!.reason));
          else storedMessages += 1;
        } catch {
          dead.push(deadMessage(p, i, 'given-up', givenUpReason(p.deliveries - 1)));
        }
      }
      ids.push(p.entry.id);
    }
    await commit(ids, dead, storedMessages);
    return stored;
  }

  /** One step of the loop; resolves with how long to wait before the next. */
  async function step(): Promise<number> {
    if (!groupReady) await ensureGroup();
    if (Date.now() >= nextClaimAt) await claim();
    if (retrying) {
      const from = cursor;
      const { entries, deliveries } = await readPending(isolate ? 1 : batchSize);
      if (!entries.length) {
        // Past the last pending entry: start over from the first, or, when there is none left, read new ones.
        if (from === '0') retrying = isolate = false;
        cursor = '0';
        return 0;
      }
      cursor = entries[entries.length - 1]!.id;
      if (await deliver(entries, deliveries)) return 0;
      if (!isolate && entries.length > 1) {
        // Failed twice as a batch: try its entries one by one, so one that always fails is dead-lettered alone.
        isolate = true;
        cursor = from;
      }
      return backoff.ms;
    }
    const read = await redis.xreadgroup(group, name, stream, '>', { count: batchSize, blockMS: blockMs });
    const entries = readEntries(read);
    if (!entries.length) {
      backoff.reset(); // Redis answers and nothing is left to retry: a later failure starts from the first wait
      return 0;
    }
    if (await deliver(entries, new Map())) return 0;
    // Nothing new is read while the handler fails: the backlog waits in the stream, not in this consumer.
    retrying = true;
    cursor = '0';
    isolate = false;
    return backoff.ms;
  }

  async function run() {
    while (!stopping) {
      let waitMs: number;
      try {
        waitMs = await step();
      } catch (err) {
        counts.redisFailures += 1;
        if (message(err).includes('NOGROUP')) groupReady = false;
        // A batch may have been stored without its acknowledgement getting through: read it again first.
        if (!retrying) {
          retrying = true;
          cursor = '0';
          isolate = false;
        }
        waitMs = backoff.fail();
        logger.log('warn', 'queue unreachable; will retry', { stream, consumer: name, retryInMs: waitMs, error: message(err) });
      }
      if (waitMs > 0 && !stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  }

  /** Leaves the group's consumer list tidy: only when nothing is pending (deleting a consumer drops its entries). */
  async function leaveGroup() {
    try {
      const pending = (await redis.xpending(stream, group, '-', '+', 1, { consumer: name })) as unknown[];
      if (!pending.length) await redis.xgroup(stream, { type: 'DELCONSUMER', group, consumer: name });
    } catch {
      // Redis unreachable: the name stays in the group, harmless.
    }
  }

  return {
    name,
    start() {
      loop ??= run();
    },
    async stop(deadlineMs = 10_000) {
      stopping = true;
      wake?.();
      if (!loop) return;
      const finished = await withDeadline(loop.then(() => true), deadlineMs, () => false);
      if (finished) await leaveGroup();
      else logger.log('warn', 'queue consumer stopped before its batch was finished', { stream, consumer: name });
    },
    stats: () => ({ ...counts, retrying }),
  };
}
