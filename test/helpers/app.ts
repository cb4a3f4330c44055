/**
 * Builds hop for integration tests the way the Node entry does: a real libSQL file in a temp directory, migrated by
 * the real migrations, and the composition root (src/composition/root.ts). Returns helpers to call it as a client would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App, AppRole } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { Scope } from '../../src/http/env.ts';
import type { Database } from '../../src/platform/db/client.ts';
import { createLogger } from '../../src/platform/logger.ts';
import type { QueueProducer } from '../../src/platform/queue/queue.ts';
import type { ClickEvent } from '../../src/modules/clicks/clicks.schemas.ts';
import { closeShards, migrateDatabase, openDatabase, openShards } from '../../src/runtimes/database.ts';
import type { ShardSet } from '../../src/platform/db/shards.ts';
import { createEmbeddedLookup } from '../../src/runtimes/embedded-lookup.ts';
import { composeApp, type Services } from '../../src/composition/root.ts';
import { composeForProcess } from '../../src/composition/process.ts';
import { createLinksRepository } from '../../src/modules/links/links.repository.ts';
import type { RedirectLookup } from '../../src/modules/redirect/redirect.lookup.ts';
import { createMetrics, type Metrics } from '../../src/platform/metrics.ts';
import { GENEROUS_RATE_LIMITS } from '../support/rate-limits.ts';

export { GENEROUS_RATE_LIMITS };

export const ADMIN_TOKEN = 'test-operator-token-0123456789abcdef';
/** HOP_METRICS_TOKEN of the test apps: an in-process request has no loopback peer, so /metrics takes the token. */
export const METRICS_TOKEN = 'test-metrics-token-0123456789abcdefgh';
export const METRICS_AUTH = { headers: { authorization: `Bearer ${METRICS_TOKEN}` } };

export interface TestApp {
  app: App;
  /** The app's own services (its link cache included). */
  services: Services;
  metrics: Metrics;
  db: Database;
  /** The shards (TestAppOptions.shards), or undefined. */
  shards: ShardSet | undefined;
  config: Config;
  /** The database file. */
  dbPath: string;
  /** The admin key of the workspace created for the test. */
  adminKey: string;
  workspaceId: string;
  /** Log lines written by the app. */
  logs: string[];
  clock: { now: Date };
  request(path: string, init?: RequestInit & { key?: string | null; json?: unknown }): Promise<Response>;
  createWorkspace(name?: string): Promise<{ id: string; adminKey: string }>;
  createKey(scopes: Scope[], key?: string): Promise<{ id: string; key: string }>;
  count(table: string): Promise<number>;
  close(): void;
}

export interface TestAppOptions {
  /**
   * Which adapter serves the redirect's read: drizzle (any libSQL target), the embedded prepared statement, or a
   * function wrapping the portable one (to count database reads).
   */
  redirectLookup?: 'portable' | 'embedded' | ((portable: RedirectLookup) => RedirectLookup);
  /** Where the app sends click events; none: clicks are not recorded. */
  clickQueue?: QueueProducer<ClickEvent>;
  metrics?: Metrics;
  /** What the app serves (HOP_ROLE); `all` by default. */
  role?: AppRole;
  /** HOP_DATABASE_SHARDS with this many `file:` shards in the test's directory; `db` is then the control database. */
  shards?: number;
}


export async function createTestApp(env: Record<string, string | undefined> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'hop-test-'));
  const config = loadConfig({
    HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
    HOP_ADMIN_TOKEN: ADMIN_TOKEN,
    HOP_METRICS_TOKEN: METRICS_TOKEN,
    HOP_LOG_LEVEL: 'warn',
    // As behind an edge that sets the visitor's country (Cloudflare's header); a test can unset it.
    HOP_GEO_HEADER: 'cf-ipcountry',
    ...GENEROUS_RATE_LIMITS,
    ...(options.shards ? { HOP_DATABASE_SHARDS: Array.from({ length: options.shards }, (_, i) => `file:${join(dir, `shard-${i}.db`)}`).join(',') } : {}),
    ...env,
  });
  const db = await openDatabase(config);
  await migrateDatabase(db);
  const shards = await openShards(config, db);
  const logs: string[] = [];
  const clock = { now: new Date() };
  const logger = createLogger({ level: config.logLevel, write: (line) => logs.push(line) });
  const embedded = options.redirectLookup === 'embedded' ? createEmbeddedLookup(join(dir, 'hop.db')) : undefined;
  const lookup =
    typeof options.redirectLookup === 'function' ? options.redirectLookup(createLinksRepository(db.orm)) : embedded;
  const metrics = options.metrics ?? createMetrics();
  // Composed as a runtime entry composes it; tests reach the same instances (the link cache's invalidation).
  const composed = composeForProcess(config, { db, shards, redirectLookup: lookup, logger, metrics, now: () => new Date(clock.now) });
  const { services } = composed;
  const app = composeApp(composed, { clicks: options.clickQueue, role: options.role });

  async function request(path: string, init: RequestInit & { key?: string | null; json?: unknown } = {}) {
    const { key, json, ...rest } = init;
    const headers = new Headers(rest.headers);
    const k = key === undefined ? created.apiKey.key : key;
    if (k !== null && !headers.has('authorization')) headers.set('authorization', `Bearer ${k}`);
    if (json !== undefined) {
      headers.set('content-type', 'application/json');
      rest.body = JSON.stringify(json);
    }
    return app.request(path, { ...rest, headers });
  }

  const created = await services.workspaces.createWorkspace({ name: 'test' }, new Date());

  return {
    app,
    services,
    metrics,
    db,
    shards,
    config,
    dbPath: join(dir, 'hop.db'),
    adminKey: created.apiKey.key,
    workspaceId: created.id,
    logs,
    clock,
    request,
    async createWorkspace(name = 'other') {
      const w = await services.workspaces.createWorkspace({ name }, new Date());
      return { id: w.id, adminKey: w.apiKey.key };
    },
    async createKey(scopes, key = created.apiKey.key) {
      const res = await request('/v1/keys', { method: 'POST', key, json: { name: scopes.join(' '), scopes } });
      if (res.status !== 201) throw new Error(`createKey: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { id: string; key: string };
      return { id: body.id, key: body.key };
    },
    async count(table) {
      const rs = await db.client.execute(`select count(*) as n from ${table}`);
      return Number(rs.rows[0]!.n);
    },
    close() {
      embedded?.close();
      closeShards(shards);
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export { expectProblem } from '../support/problem.ts';
