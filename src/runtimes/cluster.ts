/**
 * The supervisor of `hop serve --workers N` (HOP_WORKERS > 1, Node): migrates and bootstraps an embedded database
 * once, then forks N workers (node:cluster; each runs node.ts and its side is cluster-worker.ts) and keeps what
 * must be one per host: the rate-limit counters, the click writer thread, the relay of cache invalidations and the
 * gathering of /metrics. It keeps one more worker composed but not listening (the standby), which takes a crashed
 * worker's place in milliseconds; it replaces crashed workers at once (then with backoff) and stops, exit 1, when workers
 * keep crashing; SIGTERM/SIGINT drain every worker and exit 0; SIGHUP replaces the workers one by one (a rolling
 * restart that loads the code on disk anew).
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { composeForProcess, composeHostRateLimits } from '../composition/process.ts';
import type { ClickStore } from '../composition/clicks.ts';
import { loadServerConfig, type ServerConfig } from '../config.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { createMetrics, renderSnapshots, type MetricFamily } from '../platform/metrics.ts';
import type { RatePolicy, RateVerdict } from '../platform/ratelimit/ratelimit.ts';
import { createThreadedClicks } from './click-thread.ts';
import type { SupervisorRequest, WireVerdict, WorkerRequest } from './cluster-worker.ts';
import { closeShards, migrateDatabase, openDatabase, openShards } from './database.ts';
import { createChannel, type Channel, type Wire } from './ipc.ts';
import { announceKey } from './server.ts';
import { listenForMetrics, type MetricsListener } from './metrics-listener.ts';
import { collectProcessMetrics } from './process-metrics.ts';

/** How many workers HOP_WORKERS asks for on this machine. */
export const workerCount = (config: ServerConfig) => (config.workers === 'auto' ? availableParallelism() : config.workers);

/** Crashes within this window count towards the crash loop. */
const CRASH_WINDOW_MS = 30_000;
/** Workers in a row that exit before they listen: they will not start (a taken port, a broken build). */
const START_FAILURES_LIMIT = 3;
const BACKOFF_MAX_MS = 5_000;
/** How long the others may take to drop a changed link before the change's answer goes out anyway. */
const PEER_TIMEOUT_MS = 1_000;
const PURGE_AT_MOST_EVERY_MS = 30 * 60_000;
/** Past the workers' own drain (HOP_SHUTDOWN_DELAY_MS, then up to 10 s of requests), they are killed. */
const STOP_GRACE_MS = 15_000;

interface Child {
  worker: Worker;
  /** Which of the N workers it is (the `worker` label of /metrics); 0 for the standby. */
  slot: number;
  /** Composed, waiting for its turn to listen. */
  prepared: boolean;
  /** Its turn to listen: at once for a worker, on promotion for the standby. */
  turn: Promise<void>;
  go: () => void;
  ready: boolean;
  /** Being replaced or stopped: its exit is no crash. */
  retiring: boolean;
  channel: Channel;
  listening: Promise<void>;
  listened: () => void;
  exited: Promise<void>;
  startedAt: number;
}

/**
 * What a crash calls for, given the crashes of the last 30 s (this one included), the workers in a row that exited
 * before listening and how many workers there are: a replacement after `delayMs` (0 for the first crash, then 100 ms
 * doubling up to 5 s), or the stop of the whole host (`stop` says why).
 */
export function afterCrash(recentCrashes: number, startFailures: number, workers: number): { delayMs: number } | { stop: string } {
  if (startFailures >= START_FAILURES_LIMIT) return { stop: `${startFailures} workers in a row exited before listening` };
  if (recentCrashes > Math.max(5, 2 * workers)) return { stop: `${recentCrashes} worker crashes within ${CRASH_WINDOW_MS / 1000} s` };
  return { delayMs: recentCrashes <= 1 ? 0 : Math.min(BACKOFF_MAX_MS, 100 * 2 ** (recentCrashes - 2)) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Migrates and, on an empty database, creates the default workspace and prints its key: once, before any worker.
 * With shards, also opens them once (which migrates embedded shards and writes the bucket map), so that the workers
 * do not race each other to do it.
 */
async function initialise(config: ServerConfig, logger: Logger) {
  const db = await openDatabase(config, logger);
  try {
    if (db.mode !== 'embedded') return db.mode;
    await migrateDatabase(db);
    closeShards(await openShards(config, db, { logger }));
    const created = await composeForProcess(config, { db, logger }).services.workspaces.bootstrapDefaultWorkspace(new Date());
    if (created) announceKey(config, created);
    return db.mode;
  } finally {
    db.close();
  }
}

export async function supervise(env: Record<string, string | undefined>) {
  const config = loadServerConfig(env);
  const logger = createLogger({ level: config.logLevel });
  const count = workerCount(config);
  const mode = await initialise(config, logger);

  // The host's state.
  const clicks: (ClickStore & { close(): Promise<void> }) | undefined =
    // With shards each worker consumes its own clicks in process (server.ts): the thread knows one database.
    (mode === 'embedded' || mode === 'remote') && config.clicks && !config.databaseShards ? createThreadedClicks(env, logger) : undefined;
  const counters = composeHostRateLimits();
  const policies = new Map<string, RatePolicy>();
  const policyOf = (name: string, limit: number, windowS: number) => {
    const key = `${name}\u0000${limit}\u0000${windowS}`;
    let policy = policies.get(key);
    if (!policy) policies.set(key, (policy = { name, limit, windowS }));
    return policy;
  };
  const metrics = createMetrics();
  const stopSampling = config.metrics.enabled ? await collectProcessMetrics(metrics) : () => {};
  const exits = { crash: 0, retired: 0 };
  metrics.collect('hop_workers', 'Workers of this host that listen.', 'gauge', () => [[{}, [...live].filter((c) => c.ready && !c.retiring).length]]);
  metrics.collect('hop_worker_exits_total', 'Worker exits: crashed (replaced) or retired (restart, shutdown).', 'counter', () => [
    [{ reason: 'crash' }, exits.crash],
    [{ reason: 'retired' }, exits.retired],
  ]);

  const served: { metrics?: MetricsListener | undefined } = {};
  const slots = new Map<number, Child>();
  const live = new Set<Child>();
  // One more worker, composed but not listening, to take a crashed one's place at once: starting a worker (loading
  // the code, composing, opening the database) takes seconds on a busy machine, listening milliseconds.
  let standby: Child | undefined;
  let stopping = false;
  let rolling = false;
  let crashes: number[] = [];
  let startFailures = 0;
  let lastPurge = 0;
  let fatal: ((reason: string) => void) | undefined;
  const failed = new Promise<string>((resolve) => (fatal = resolve));

  function handle(child: Child, body: unknown): unknown {
    const request = body as WorkerRequest;
    switch (request.q) {
      case 'prepared':
        child.prepared = true;
        if (child === standby) logger.log('info', 'standby ready', { pid: child.worker.process.pid, startMs: Date.now() - child.startedAt });
        return child.turn;
      case 'ready':
        return void markReady(child);
      case 'take':
        return request.batch.map(([now, takes]) =>
          // The memory store answers synchronously.
          (counters.take(
            takes.map(([name, limit, windowS, key, cost]) => ({ policy: policyOf(name, limit, windowS), key, cost })),
            now,
          ) as RateVerdict[]).map((v): WireVerdict => [v.allowed ? 1 : 0, v.remaining!, v.resetS!, v.used!]),
        );
      case 'ingest':
        if (!clicks) throw new Error('this host has no click thread (clicks off, or an embedded replica)');
        return clicks.ingest(request.messages);
      case 'purge':
        if (!clicks) throw new Error('this host has no click thread (clicks off, or an embedded replica)');
        // Every worker's pipeline asks hourly; once an hour for the host is enough.
        if (request.now - lastPurge < PURGE_AT_MOST_EVERY_MS) return 0;
        lastPurge = request.now;
        return clicks.purge(new Date(request.now), request.retentionDays, request.limit);
      case 'publish':
        return Promise.all(
          [...live]
            .filter((other) => other !== child)
            .map((other) =>
              Promise.race([other.channel.request({ q: 'forget', change: request.change } satisfies SupervisorRequest), sleep(PEER_TIMEOUT_MS)]).catch(
                () => undefined, // It exited: its memory went with it.
              ),
            ),
        ).then(() => true);
      case 'metrics':
        return gatherMetrics();
    }
  }

  async function gatherMetrics() {
    const others = [...live].filter((c) => !c.retiring && c.slot > 0);
    const snapshots = await Promise.all(
      others.map((c) =>
        Promise.race([c.channel.request<MetricFamily[]>({ q: 'snapshot' } satisfies SupervisorRequest), sleep(PEER_TIMEOUT_MS).then(() => [])]).catch(
          () => [] as MetricFamily[],
        ),
      ),
    );
    return renderSnapshots([
      { labels: { worker: 'supervisor' }, families: metrics.snapshot() },
      ...others.map((c, i) => ({ labels: { worker: String(c.slot) }, families: snapshots[i]! })),
    ]);
  }

  function fork(slot: number): Child {
    // The environment the supervisor was given (HOP_WORKERS from --workers, a test's): the workers read the same.
    const worker = cluster.fork(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)));
    let listened: () => void = () => {};
    let go: () => void = () => {};
    const child: Child = {
      worker,
      slot,
      prepared: false,
      turn: new Promise<void>((resolve) => (go = resolve)),
      go: () => go(),
      ready: false,
      retiring: false,
      channel: createChannel((message: Wire) => worker.send(message), (body) => handle(child, body)),
      listening: new Promise<void>((resolve) => (listened = resolve)),
      listened: () => listened(),
      exited: new Promise<void>((resolve) => worker.once('exit', () => resolve())),
      startedAt: Date.now(),
    };
    live.add(child);
    if (slot > 0) child.go();
    worker.on('message', (message) => child.channel.receive(message));
    worker.once('exit', (code, signal) => {
      live.delete(child);
      child.channel.close(`worker ${slot} exited`);
      onExit(child, code, signal);
    });
    return child;
  }
  function markReady(child: Child) {
    child.ready = true;
    startFailures = 0;
    logger.log('info', 'worker ready', { worker: child.slot, pid: child.worker.process.pid, startMs: Date.now() - child.startedAt });
    child.listened();
  }

  function onExit(child: Child, code: number | null, signal: string | null) {
    const pid = child.worker.process.pid;
    if (child.retiring || stopping) {
      exits.retired += 1;
      logger.log('info', 'worker stopped', { worker: child.slot, pid, code, signal });
      return;
    }
    exits.crash += 1;
    const now = Date.now();
    crashes = [...crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
    if (!child.ready) startFailures += 1;
    logger.log('error', 'worker exited', { worker: child.slot, pid, code, signal, ready: child.ready, crashesIn30s: crashes.length });
    const next = afterCrash(crashes.length, startFailures, count);
    if ('stop' in next) return fatal?.(next.stop);
    // The first crash is replaced at once; a run of them waits longer each time.
    const { delayMs } = next;
    if (child === standby) {
      standby = undefined;
      return replaceStandby(delayMs);
    }
    // A replacement of a worker being replaced (a rolling restart) is the restart's to decide.
    if (slots.get(child.slot) !== child) return;
    if (standby?.prepared) {
      const promoted = standby;
      standby = undefined;
      promoted.slot = child.slot;
      slots.set(child.slot, promoted);
      promoted.go();
      return replaceStandby(delayMs);
    }
    setTimeout(() => {
      if (!stopping && slots.get(child.slot) === child) slots.set(child.slot, fork(child.slot));
    }, delayMs).unref();
  }

  function replaceStandby(delayMs: number) {
    setTimeout(() => {
      if (!stopping && !rolling && !standby) standby = fork(0);
    }, delayMs).unref();
  }

  async function stop(signal: string, code: number) {
    if (stopping) return;
    stopping = true;
    logger.log(code ? 'error' : 'info', 'stopping workers', { signal, workers: live.size });
    const children = [...live];
    for (const c of children) {
      c.retiring = true;
      c.worker.process.kill('SIGTERM');
    }
    const deadline = sleep(config.shutdownDelayMs + STOP_GRACE_MS).then(() => 'late' as const);
    if ((await Promise.race([Promise.all(children.map((c) => c.exited)), deadline])) === 'late') {
      logger.log('warn', 'workers still running past the deadline; killed', { workers: live.size });
      for (const c of live) c.worker.process.kill('SIGKILL');
    }
    // Every worker has handed its last click batch over: the thread stores it and closes.
    await clicks?.close();
    await served.metrics?.close();
    stopSampling();
    logger.log('info', 'stopped', { signal });
    process.exit(code);
  }

  /** SIGHUP: for each slot, a new worker, and once it listens the old one drains; no request is refused meanwhile. */
  async function roll() {
    if (rolling || stopping) return;
    rolling = true;
    logger.log('info', 'rolling restart', { workers: slots.size });
    try {
      for (const [slot, old] of slots) {
        const fresh = fork(slot);
        const outcome = await Promise.race([fresh.listening.then(() => 'ready' as const), fresh.exited.then(() => 'exited' as const)]);
        if (stopping) return;
        if (outcome === 'exited') {
          logger.log('error', 'rolling restart stopped: the new worker did not start; the old ones keep serving', { worker: slot });
          return;
        }
        slots.set(slot, fresh);
        old.retiring = true;
        old.worker.process.kill('SIGTERM');
        await old.exited;
      }
      // The standby runs the old code too.
      const old = standby;
      standby = undefined;
      if (old) {
        old.retiring = true;
        old.worker.process.kill('SIGTERM');
      }
      logger.log('info', 'rolling restart done', { workers: slots.size });
    } finally {
      rolling = false;
      replaceStandby(0);
    }
  }

  // Each worker runs its runtime's entry: Node's servers share the supervisor's listening socket (connections handed
  // round-robin), Bun's each listen with reusePort (Bun's cluster has no shared handles).
  const entry = 'bun' in process.versions ? './bun.ts' : './node.ts';
  cluster.setupPrimary({ exec: fileURLToPath(new URL(entry, import.meta.url)), args: [] });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop(signal, 0));
  process.on('SIGHUP', () => void roll());
  void failed.then((reason) => {
    logger.log('error', 'workers keep crashing; stopping', { reason });
    console.error(`hop: workers keep crashing (${reason}); see the log above.`);
    return stop('crash loop', 1);
  });

  // HOP_METRICS_ADDR: the host's metrics, every worker's, served by the supervisor itself (the workers do not listen
  // there). Before the workers start: an address in use stops the start at once.
  served.metrics = config.metrics.listen ? await listenForMetrics(config.metrics.listen, gatherMetrics, logger) : undefined;
  for (let slot = 1; slot <= count; slot++) slots.set(slot, fork(slot));
  const started = await Promise.race([
    Promise.all([...slots.values()].map((c) => c.listening)).then(() => true),
    failed.then(() => false),
  ]);
  if (!started) {
    // stop() exits the process with 1; wait for it.
    await new Promise(() => {});
  }
  replaceStandby(0);
  logger.log('info', 'supervising', { workers: count, url: `http://${config.host}:${config.port}`, pid: process.pid });
  return { pid: process.pid, metricsPort: served.metrics?.port };
}
