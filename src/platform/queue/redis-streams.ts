/**
 * The queue on Redis Streams, spoken over the Upstash REST protocol (a client from src/platform/redis.ts).
 *
 * Producer: messages gather in memory (the in-process queue as a bounded buffer, with its batching, backoff and
 * flush on close) and go to the stream one entry per batch (field `b`, a JSON array of up to 100 messages), up to
 * ten entries per request (a pipeline) and a few requests in flight at once; `send` never waits. One JSON string
 * per entry and one request per ten, instead of a command per message: producing was the largest cost clicks added
 * to a redirect (docs/benchmarks.md). Entries of one message (field
 * `m`, from other producers or an older hop) are read too.
 *
 * Consumer: one consumer (a unique name per process) of a consumer group shared by every process, so N processes
 * share the work. It reads up to `batchSize` new entries (XREADGROUP ... BLOCK), hands them to the handler, and only
 * once the handler has resolved (the batch is committed) acknowledges and deletes them (XACK + XDEL in one
 * MULTI/EXEC): delivery is at least once, and the handler makes storage exactly once. A message the handler
 * refuses, one that is not JSON, and one delivered more than `maxDeliveries` times go to the dead-letter stream
 * with the reason, in the same transaction as their acknowledgement. When the handler fails (database down) nothing
 * is acknowledged: the consumer reads nothing new and retries its own pending entries with backoff, the whole batch
 * once, then one entry at a time, so one entry that always fails is dead-lettered alone and its batch-mates are
 * stored; past `maxDeliveries` a batch entry's messages are tried one by one, once, and only those that fail are
 * dead-lettered. Each handler call gets whole entries, at most `batchSize` messages (an entry is never split). Entries left pending by a consumer that died are taken over by the others (XAUTOCLAIM) once idle for
 * `claimIdleMs`, and its name leaves the group once it holds nothing and has been silent for `forgetAfterMs`.
 * The stream belongs to this one group: acknowledged entries are deleted, not left for other groups.
 */
import type { Redis } from '@upstash/redis';
import type { Logger } from '../logger.ts';
import { createMemoryQueue, type MemoryQueue } from './memory.ts';
import type { BatchHandler } from './queue.ts';

/** The entry field that holds one JSON message. */
const FIELD = 'm';
/** The entry field that holds a JSON array of messages. */
const BATCH_FIELD = 'b';

export interface RedisStreamsProducerOptions {
  redis: Redis;
  stream: string;
  logger: Logger;
  /** Messages per stream entry. */
  maxBatch?: number;
  /** Entries sent in one request (an Upstash pipeline of XADDs) when that many are waiting. */
  entriesPerRequest?: number;
  /** Requests in flight at once. */
  maxInFlight?: number;
  /** How long the first buffered message waits for others before its batch is sent. */
  maxWaitMs?: number;
  /** Messages held at most while Redis is unreachable; beyond it new ones are dropped and counted. */
  maxBuffered?: number;
}

/** The producer: `send` buffers, each batch goes out as one entry, failures are retried with backoff. */
export function createRedisStreamsProducer<T>(options: RedisStreamsProducerOptions): MemoryQueue<T> {
  const { redis, stream } = options;
  const perEntry = options.maxBatch ?? 100;
  const perRequest = options.entriesPerRequest ?? 10;
  const entry = (messages: readonly T[]) => ({ [BATCH_FIELD]: JSON.stringify(messages) });
  return createMemoryQueue<T>({
    logger: options.logger,
    maxBatch: perEntry * perRequest,
    maxWaitMs: options.maxWaitMs ?? 250,
    maxBuffered: options.maxBuffered ?? 100_000,
    // Each request waits a round trip to Redis; in order or not makes no difference to the consumer.
    maxInFlight: options.maxInFlight ?? 4,
    // A failed request is sent again whole: an entry added twice (an answer was lost, or a pipeline failed half
    // way) is counted once downstream.
    async handle(batch) {
      if (batch.length <= perEntry) {
        await redis.xadd(stream, '*', entry(batch));
        return { rejected: [] };
      }
      // Under load, several entries per HTTP request: the request, not the bytes, was most of what producing cost.
      const pipeline = redis.pipeline();
      for (let i = 0; i < batch.length; i += perEntry) pipeline.xadd(stream, '*', entry(batch.slice(i, i + perEntry)));
      await pipeline.exec();
      return { rejected: [] };
    },
  });
}

export interface RedisStreamsConsumerOptions {
  redis: Redis;
  stream: string;
  group: string;
  /** The dead-letter stream: fields `m` (the message as it was), `id` (its entry), `reason`, `deliveries`. */
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

interface Entry {
  id: string;
  /** The raw value; undefined when the entry has no message field, null when the entry was deleted. */
  raw: string | undefined | null;
  /** Whether `raw` is a batch (a JSON array of messages) or one message. */
  batch: boolean;
}

interface DeadLetter {
  id: string;
  /** The message's position in a batch entry. */
  index?: number;
  raw: string | undefined;
  reason: string;
  deliveries: number;
}

/** `[[stream, [[id, [field, value, ...] | null], ...]]]` (or null) to entries. */
function readEntries(reply: unknown): Entry[] {
  if (!Array.isArray(reply) || !reply.length) return [];
  const entries = (reply[0] as [string, Array<[string, string[] | null]>])[1] ?? [];
  return entries.map(([id, fields]) => {
    if (!fields) return { id, raw: null, batch: false };
    const at = fields.findIndex((f, i) => i % 2 === 0 && (f === FIELD || f === BATCH_FIELD));
    return at === -1 ? { id, raw: undefined, batch: false } : { id, raw: fields[at + 1], batch: fields[at] === BATCH_FIELD };
  });
}

/** An entry read: its messages, or why it cannot be delivered. */
type Parsed = { entry: Entry; messages: unknown[]; deliveries: number } | { dead: DeadLetter } | { gone: string };

function parseEntry(entry: Entry, deliveries: number): Parsed {
  // Deleted from the stream while pending: nothing left to deliver.
  if (entry.raw === null) return { gone: entry.id };
  if (entry.raw === undefined) return { dead: { id: entry.id, raw: undefined, reason: `no "${FIELD}" or "${BATCH_FIELD}" field`, deliveries } };
  let value: unknown;
  try {
    value = JSON.parse(entry.raw);
  } catch {
    return { dead: { id: entry.id, raw: entry.raw, reason: 'not JSON', deliveries } };
  }
  if (!entry.batch) return { entry, messages: [value], deliveries };
  if (!Array.isArray(value)) return { dead: { id: entry.id, raw: entry.raw, reason: 'not a JSON array', deliveries } };
  return { entry, messages: value, deliveries };
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
  let backoffMs = 0;
  let stopping = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  const nextBackoff = () => (backoffMs = Math.min(backoffMs ? backoffMs * 2 : retryBaseMs, retryMaxMs));

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
    for (const d of dead) {
      const where = d.index === undefined ? {} : { index: d.index };
      tx.xadd(deadLetter, '*', { [FIELD]: d.raw ?? '', id: d.id, ...where, reason: d.reason, deliveries: d.deliveries, stream });
    }
    tx.xack(stream, group, ids);
    tx.xdel(stream, ids);
    await tx.exec();
    counts.acked += stored;
    counts.deadLettered += dead.length;
    for (const d of dead) logger.log('warn', 'queue message dead-lettered', { stream, deadLetter, id: d.id, index: d.index, reason: d.reason });
  }

  type Ready = Extract<Parsed, { messages: unknown[] }>;

  const deadMessage = (p: Ready, index: number, reason: string): DeadLetter =>
    p.entry.batch
      ? { id: p.entry.id, index, raw: JSON.stringify(p.messages[index]), reason, deliveries: p.deliveries }
      : { id: p.entry.id, raw: p.entry.raw!, reason, deliveries: p.deliveries };

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
        dead.push(deadMessage(parsed, 0, `not stored after ${n - 1} deliveries`));
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
            else dead.push(deadMessage(p, i, reason));
          });
          offset += p.messages.length;
          ids.push(p.entry.id);
        }
        backoffMs = 0;
      } catch (err) {
        stored = false;
        counts.handlerFailures += 1;
        logger.log('warn', 'queue batch not stored; will retry', {
          stream,
          consumer: name,
          size: chunk.reduce((n, p) => n + p.messages.length, 0),
          retryInMs: nextBackoff(),
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
          if (rejected.length) dead.push(deadMessage(p, i, rejected[0]!.reason));
          else storedMessages += 1;
        } catch {
          dead.push(deadMessage(p, i, `not stored after ${p.deliveries - 1} deliveries`));
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
      return backoffMs;
    }
    const read = await redis.xreadgroup(group, name, stream, '>', { count: batchSize, blockMS: blockMs });
    const entries = readEntries(read);
    if (!entries.length) {
      backoffMs = 0; // Redis answers and nothing is left to retry: a later failure starts from the first wait
      return 0;
    }
    if (await deliver(entries, new Map())) return 0;
    // Nothing new is read while the handler fails: the backlog waits in the stream, not in this consumer.
    retrying = true;
    cursor = '0';
    isolate = false;
    return backoffMs;
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
        waitMs = nextBackoff();
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
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finished = await Promise.race([
        loop.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), deadlineMs))),
      ]);
      clearTimeout(timer);
      if (finished) await leaveGroup();
      else logger.log('warn', 'queue consumer stopped before its batch was finished', { stream, consumer: name });
    },
    stats: () => ({ ...counts, retrying }),
  };
}

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

/** Why a message was given up after its deliveries (commit above): those are worth another try once storage is back. */
const GIVEN_UP = /^not stored after \d+ deliveries$/;

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
    const fields = new Map(list.flatMap((v, i) => (i % 2 ? [] : [[v, list[i + 1] ?? '']])));
    const raw = fields.get(FIELD) ?? '';
    if (!raw || (!all && !GIVEN_UP.test(fields.get('reason') ?? ''))) kept += 1;
    else back.push({ id, raw });
  }
  if (!back.length) return { redriven: 0, kept };
  const tx = redis.multi();
  for (const { raw } of back) tx.xadd(stream, '*', { [FIELD]: raw });
  tx.xdel(deadLetter, back.map((b) => b.id));
  await tx.exec();
  return { redriven: back.length, kept };
}
