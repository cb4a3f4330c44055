/**
 * A worker's side of the supervisor (cluster.ts, HOP_WORKERS > 1): what it hands the composition in place of its
 * own, so that the workers of one host behave as one server:
 * - the rate-limit store asks the supervisor, which holds the host's counters (the takes that arrive while a
 *   message is out travel together in the next, one message each way);
 * - click batches go to the supervisor, whose one click thread writes the embedded database;
 * - a change this worker makes is dropped from every other worker's memory tier before the API answers;
 * - /metrics asks the supervisor for every worker's counters.
 * It also tells the supervisor when this worker is composed (the standby then waits until it takes a crashed
 * worker's place) and when it listens (a rolling restart waits for it).
 */
import type { CacheChange, CachePeers } from '../composition/root.ts';
import type { ClickStore } from '../composition/clicks.ts';
import { createMetrics, type MetricFamily } from '../platform/metrics.ts';
import type { RateLimitStore, RateTake, RateVerdict } from '../platform/ratelimit/ratelimit.ts';
import { createChannel, type Wire } from './ipc.ts';

/** A take as sent: policy name, limit, window, key, cost. */
export type WireTake = [string, number, number, string, -1 | 0 | 1];
/** A verdict as answered: allowed (1 or 0), remaining, seconds to reset, the counter after the take. */
export type WireVerdict = [number, number, number, number];

/** What a worker asks the supervisor. */
export type WorkerRequest =
  | { q: 'prepared' }
  | { q: 'ready' }
  | { q: 'take'; batch: Array<[number, WireTake[]]> }
  | { q: 'ingest'; messages: unknown[] }
  | { q: 'purge'; now: number; retentionDays: number; limit: number | undefined }
  | { q: 'publish'; change: CacheChange }
  | { q: 'metrics' };

/** What the supervisor asks a worker. */
export type SupervisorRequest = { q: 'forget'; change: CacheChange } | { q: 'snapshot' };

export function joinSupervisor() {
  const metrics = createMetrics();
  const subscribers: Array<(change: CacheChange) => void> = [];
  const channel = createChannel(
    (message: Wire) => process.send!(message),
    (body) => {
      const request = body as SupervisorRequest;
      if (request.q === 'snapshot') return metrics.snapshot() satisfies MetricFamily[];
      for (const apply of subscribers) apply(request.change);
      return true;
    },
  );
  process.on('message', (message) => channel.receive(message));
  process.once('disconnect', () => channel.close('the supervisor is gone'));

  let batch: Array<{ takes: readonly RateTake[]; now: number; resolve: (v: RateVerdict[]) => void; reject: (e: Error) => void }> = [];
  let scheduled = false;
  let sending = false;
  const sent = { messages: 0, takes: 0 };
  metrics.collect('hop_ratelimit_host_messages_total', "Messages that carried this worker's rate-limit takes to the supervisor.", 'counter', () => [
    [{}, sent.messages],
  ]);
  metrics.collect('hop_ratelimit_host_requests_total', 'Requests whose rate limits this worker asked the supervisor for.', 'counter', () => [
    [{}, sent.takes],
  ]);
  // One message in flight at a time: what arrives meanwhile goes in the next, so under load a message carries many
  // requests (a round trip costs both processes tens of µs of CPU, whatever it carries).
  function flush() {
    scheduled = false;
    if (sending || !batch.length) return;
    sending = true;
    const out = batch;
    batch = [];
    sent.messages += 1;
    sent.takes += out.length;
    channel
      .request<WireVerdict[][]>({
        q: 'take',
        batch: out.map(({ takes, now }) => [now, takes.map((t) => [t.policy.name, t.policy.limit, t.policy.windowS, t.key, t.cost])]),
      } satisfies WorkerRequest)
      .then(
        (answers) =>
          out.forEach(({ takes, resolve }, i) =>
            resolve(answers[i]!.map(([allowed, remaining, resetS, used], j) => ({ policy: takes[j]!.policy, allowed: allowed === 1, remaining, resetS, used }))),
          ),
        (err: Error) => out.forEach(({ reject }) => reject(err)),
      )
      .finally(() => {
        sending = false;
        flush();
      });
  }
  const hostRateLimitStore: RateLimitStore = {
    kind: 'memory',
    // The supervisor's store is in memory: it gives places back.
    refunds: true,
    take(takes, now) {
      return new Promise((resolve, reject) => {
        batch.push({ takes, now, resolve, reject });
        // Every take of this turn of the event loop in one message, at the earliest.
        if (!scheduled && !sending) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };

  // How long the other workers take to drop what this one changed (the change's answer waits for it).
  const relayed = { count: 0, seconds: 0 };
  metrics.collect('hop_cache_peer_invalidations_total', 'Changes this worker relayed to the other workers of the host.', 'counter', () => [[{}, relayed.count]]);
  metrics.collect(
    'hop_cache_peer_invalidation_seconds_total',
    'Time until every other worker had dropped the changed entries, summed over those changes.',
    'counter',
    () => [[{}, relayed.seconds]],
  );
  const cachePeers: CachePeers = {
    async publish(change) {
      const started = performance.now();
      await channel.request<void>({ q: 'publish', change } satisfies WorkerRequest);
      relayed.count += 1;
      relayed.seconds += (performance.now() - started) / 1000;
    },
    subscribe: (apply) => void subscribers.push(apply),
  };

  const clickStore: ClickStore & { close(): Promise<void> } = {
    ingest: (messages) => channel.request({ q: 'ingest', messages: [...messages] } satisfies WorkerRequest),
    purge: (now, retentionDays, limit) =>
      channel.request({ q: 'purge', now: now.getTime(), retentionDays, limit } satisfies WorkerRequest),
    // The thread is the supervisor's: it closes it once every worker has handed over its last batch.
    close: async () => {},
  };

  return {
    /** What prepare() composes with in place of this process's own. */
    provided: {
      metrics,
      hostRateLimitStore,
      cachePeers,
      clickStore,
      hostMetrics: () => channel.request<string>({ q: 'metrics' } satisfies WorkerRequest),
    },
    /** Tells the supervisor this worker is composed; resolves when it is to listen (at once, or as the standby promoted). */
    prepared: () => channel.request<void>({ q: 'prepared' } satisfies WorkerRequest),
    /** Tells the supervisor this worker listens. */
    ready: () => channel.request<void>({ q: 'ready' } satisfies WorkerRequest),
  };
}

export type SupervisorHooks = ReturnType<typeof joinSupervisor>;

/**
 * Before listening: the standby waits here, composed, until a worker dies. False when the supervisor went away
 * meanwhile (the caller closes what it opened and stops).
 */
export const awaitTurn = (supervisor: SupervisorHooks) => supervisor.prepared().then(() => true, () => false);

/** Once listening: the worker's signals and its supervisor's absence lead to one drain, then the exit. */
export async function serveUnder(supervisor: SupervisorHooks, shutdown: (signal: string) => Promise<void>) {
  // A signal to the whole group (Ctrl-C, an orchestrator's) arrives again from the supervisor: one drain, not a
  // kill. Drained, the worker lets go of its IPC channel, the one thing that would keep it running.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => void shutdown(signal).then(() => process.connected && process.disconnect()));
  }
  // Without its supervisor a worker has no rate limits, click writer or peers: it drains and stops.
  process.once('disconnect', () => void shutdown('SIGINT'));
  await supervisor.ready();
}
