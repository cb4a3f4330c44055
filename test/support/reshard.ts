/**
 * Resharding scenarios shared by test/integration/reshard.test.ts and bench/reshard.ts: links (with clicks and their
 * rollups) seeded straight into a sharded deployment, a real `hop serve` over it, redirects hammered while
 * `hop reshard` runs as a child process (SIGKILLed when asked), and the click totals read back from the shards.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.ts';
import { linkBuckets, links, type LinkRow } from '../../src/db/schema.ts';
import { compose } from '../../src/composition/root.ts';
import { linkDefaults } from '../../src/modules/links/links.service.ts';
import { newId } from '../../src/platform/crypto.ts';
import { bucketOf, loadBucketMap } from '../../src/platform/db/shards.ts';
import { migrateDatabase, openDatabase } from '../../src/runtimes/database.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const ADMIN_TOKEN = 'reshard-admin-token-0123456789abcdef';
const SLOT_MS = 15 * 60_000;

export const slugOf = (n: number) => `r${n}`;

export interface Seeded {
  workspaceId: string;
  domain: string;
  links: number;
  clicks: number;
}

/** `links` links on the default domain over `shards` (the bucket map of a fresh deployment), `clicksPerLink` clicks each, counted in every rollup a redirect's click would be. */
export async function seedSharded(controlUrl: string, shards: string[], count: number, clicksPerLink: number): Promise<Seeded> {
  const config = loadConfig({ HOP_DATABASE_URL: controlUrl, HOP_LOG_LEVEL: 'silent', HOP_DATABASE_TIMEOUT_MS: '60000' });
  const control = await openDatabase(config);
  const dbs = await Promise.all(shards.map((url) => openDatabase({ ...config, databaseUrl: url })));
  try {
    await migrateDatabase(control);
    for (const db of dbs) await migrateDatabase(db);
    const workspace = await compose(config, { db: control }).services.workspaces.createWorkspace({ name: 'reshard' }, new Date());
    const map = await loadBucketMap(control, shards.length);
    const now = Date.now();
    const slot = now - (now % SLOT_MS);
    const perShard = dbs.map(() => ({ links: [] as LinkRow[], clicks: [] as unknown[][], totals: [] as unknown[][] }));
    const directory: { linkId: string; workspaceId: string; domain: string; bucket: number }[] = [];
    for (let n = 0; n < count; n++) {
      const slug = slugOf(n);
      const bucket = bucketOf(config.defaultDomain, slug);
      const id = newId('lnk');
      const part = perShard[map[bucket]!]!;
      part.links.push({
        ...linkDefaults(),
        id,
        workspaceId: workspace.id,
        domain: config.defaultDomain,
        slug,
        url: `https://example.com/${n}`,
        clicks: clicksPerLink,
        createdAt: new Date(now),
        updatedAt: new Date(now),
      });
      for (let c = 0; c < clicksPerLink; c++) part.clicks.push([newId('clk'), workspace.id, id, now - c]);
      if (clicksPerLink) part.totals.push([id, slot, clicksPerLink]);
      directory.push({ linkId: id, workspaceId: workspace.id, domain: config.defaultDomain, bucket });
    }
    for (let i = 0; i < directory.length; i += 1000) await control.orm.insert(linkBuckets).values(directory.slice(i, i + 1000));
    for (const [s, db] of dbs.entries()) {
      const part = perShard[s]!;
      await db.client.execute({ sql: "insert or ignore into workspaces (id, name, created_at) values (?, '', 0)", args: [workspace.id] });
      for (let i = 0; i < part.links.length; i += 400) await db.orm.insert(links).values(part.links.slice(i, i + 400));
      const rows = (list: unknown[][], n: number, sql: (values: string) => string) => {
        const out = [];
        for (let i = 0; i < list.length; i += 1000) {
          const chunk = list.slice(i, i + 1000);
          out.push({ sql: sql(chunk.map(() => `(${Array.from({ length: n }, () => '?').join(',')})`).join(',')), args: chunk.flat() as never[] });
        }
        return out;
      };
      const statements = [
          ...rows(part.clicks, 4, (v) => `insert into clicks (id, workspace_id, link_id, at, device, browser, os, bot) select column1, column2, column3, column4, 'desktop', 'x', 'y', 0 from (values ${v})`),
          ...rows(part.totals, 3, (v) => `insert into click_totals (link_id, slot, humans, bots) select column1, column2, column3, 0 from (values ${v})`),
          {
            sql: 'insert into workspace_totals (workspace_id, slot, humans, bots) values (?, ?, ?, 0)',
            args: [workspace.id, slot, part.clicks.length],
          },
      ];
      for (let i = 0; i < statements.length; i += 10) await db.client.batch(statements.slice(i, i + 10), 'write');
    }
    return { workspaceId: workspace.id, domain: config.defaultDomain, links: count, clicks: count * clicksPerLink };
  } finally {
    for (const db of dbs) db.close();
    control.close();
  }
}

/** Clicks as the shards' rollups count them: per link (click_totals) and per workspace (workspace_totals). */
export async function clickTotals(controlUrl: string, shards: string[]): Promise<{ links: number; workspaces: number; raw: number }> {
  const config = loadConfig({ HOP_DATABASE_URL: controlUrl, HOP_LOG_LEVEL: 'silent', HOP_DATABASE_TIMEOUT_MS: '60000' });
  const out = { links: 0, workspaces: 0, raw: 0 };
  for (const url of shards) {
    const db = await openDatabase({ ...config, databaseUrl: url });
    try {
      const [a, b, c] = await db.client.batch(
        ['select coalesce(sum(humans + bots), 0) as n from click_totals', 'select coalesce(sum(humans + bots), 0) as n from workspace_totals', 'select count(*) as n from clicks'],
        'read',
      );
      out.links += Number(a!.rows[0]!.n);
      out.workspaces += Number(b!.rows[0]!.n);
      out.raw += Number(c!.rows[0]!.n);
    } finally {
      db.close();
    }
  }
  return out;
}

export interface Hammer {
  /** Stops and returns what the redirects answered. */
  stop(): Promise<{ ok: number; failed: number; statuses: Record<string, number> }>;
}

/** `concurrency` loops of GET /<slug> (redirect: manual) over random seeded slugs until stopped; at most `ratePerS` in all when given. */
export function hammer(baseUrl: string, host: string, count: number, concurrency = 8, ratePerS?: number): Hammer {
  const gapMs = ratePerS ? (1000 * concurrency) / ratePerS : 0;
  let running = true;
  const statuses: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const started = Date.now();
      const slug = slugOf(Math.floor(Math.random() * count));
      let status: string;
      try {
        const res = await fetch(`${baseUrl}/${slug}`, { headers: { host, 'user-agent': 'Mozilla/5.0 (reshard test)' }, redirect: 'manual' });
        await res.arrayBuffer();
        status = String(res.status);
      } catch (err) {
        status = `error ${err instanceof Error ? err.message : String(err)}`;
      }
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === '302') ok++;
      else failed++;
      const rest = gapMs - (Date.now() - started);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ok, failed, statuses };
    },
  };
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/**
 * `hop reshard` (or any hop command) as a child process. `killWhen`: SIGKILL it as soon as its output matches.
 */
export function runHop(args: string[], env: Record<string, string>, killWhen?: RegExp): Promise<CliRun> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('HOP_')) clean[k] = v;
  const child = spawn(process.execPath, ['bin/hop.js', ...args], { cwd: ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const take = (d: Uint8Array) => {
    output += new TextDecoder().decode(d);
    if (killWhen && killWhen.test(output) && child.exitCode === null) child.kill('SIGKILL');
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, output })));
}

/** Waits until `read` returns `expected` (the click consumer catching up), or returns the last value after `ms`. */
export async function settle<T>(read: () => Promise<T>, expected: T, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  let value = await read();
  while (JSON.stringify(value) !== JSON.stringify(expected) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    value = await read();
  }
  return value;
}
