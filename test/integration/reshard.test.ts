// `hop reshard` over `file:` shards while a real `hop serve` answers redirects and records their clicks: 1 → 3 shards
// with the first run SIGKILLed mid-move and rerun, then 3 → 2; zero failed redirects, every click counted once, the
// moved links listed once and found by id. Bad `--to` lists are refused with a clear message and change nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/runtimes/database.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { ADMIN_TOKEN, clickTotals, hammer, ROOT, runHop, seedSharded, settle, type Seeded } from '../support/reshard.ts';

const LINKS = 400;
const CLICKS_PER_LINK = 2;

let dir: string;
let control: string;
let shard: (name: string) => string;
let hop: Running;
let baseUrl: string;
let seeded: Seeded;
let env: Record<string, string>;
/** Redirects answered outside the hammer (each one a click). */
let redirected = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hop-reshard-'));
  control = `file:${join(dir, 'control.db')}`;
  shard = (name) => `file:${join(dir, `${name}.db`)}`;
  seeded = await seedSharded(control, [shard('a')], LINKS, CLICKS_PER_LINK);
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  env = {
    HOP_DATABASE_URL: control,
    HOP_DATABASE_SHARDS: shard('a'),
    // hop reshard's grace follows from these: 3 s for the layout to go stale, plus twice a write's wait and deadline.
    HOP_DATABASE_TIMEOUT_MS: '500',
    HOP_DATABASE_QUEUE_TIMEOUT_MS: '250',
    HOP_LOG_LEVEL: 'warn',
  };
  hop = await startProcess(
    process.execPath,
    [join(ROOT, 'src/runtimes/node.ts')],
    { ...env, PORT: String(port), HOST: '127.0.0.1', HOP_ADMIN_TOKEN: ADMIN_TOKEN, HOP_BASE_URL: `http://localhost:${port}`, HOP_RATE_LIMIT: 'off', HOP_SHUTDOWN_DELAY_MS: '0' },
    baseUrl,
  );
}, 60_000);

afterAll(async () => {
  await hop?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const reshard = (to: string[], killWhen?: RegExp, extra: string[] = []) =>
  runHop(['reshard', '--to', to.join(','), '--wave', '512', ...extra], env, killWhen);


describe('hop reshard', () => {
  it('refuses an empty list, a bad URL and an unreachable shard, changing nothing', async () => {
    const before = await clickTotals(control, [shard('a')]);
    const empty = await runHop(['reshard', '--to', ''], env);
    expect(empty.code).not.toBe(0);
    expect(empty.output).toMatch(/--to must list at least one shard URL/);
    const bad = await reshard(['postgres://nope']);
    expect(bad.code).not.toBe(0);
    expect(bad.output).toMatch(/"postgres:\/\/nope" is not a shard URL/);
    const port = await freePort();
    const down = await reshard([shard('a'), `http://127.0.0.1:${port}`]);
    expect(down.code).not.toBe(0);
    expect(down.output).toMatch(/shard http:\/\/127\.0\.0\.1:\d+ cannot be reached/);
    expect(down.output).not.toMatch(/\n\s+at /);
    const same = await reshard([shard('a')]);
    expect(same.code).not.toBe(0);
    expect(same.output).toMatch(/nothing to move/);
    // Nothing moved: no layout written, the one shard still holds every link, and the process still redirects.
    const db = await openDatabase(loadConfig({ HOP_DATABASE_URL: control }));
    try {
      expect((await db.client.execute('select count(*) as n from shard_layout')).rows[0]!.n).toBe(0);
      expect((await db.client.execute('select count(*) as n from reshard_state')).rows[0]!.n).toBe(0);
    } finally {
      db.close();
    }
    expect(await clickTotals(control, [shard('a')])).toEqual(before);
    const res = await fetch(`${baseUrl}/r1`, { headers: { host: 'localhost' }, redirect: 'manual' });
    expect(res.status).toBe(302);
    redirected++;
  }, 30_000);

  it('moves 1 → 3 under redirects, SIGKILLed mid-move and rerun, then 3 → 2: no redirect fails, every click counted once', async () => {
    const load = hammer(baseUrl, 'localhost', LINKS, 6);
    const killed = await reshard([shard('a'), shard('b'), shard('c')], /freezing/);
    expect(killed.signal).toBe('SIGKILL');
    const rerun = await reshard([shard('a'), shard('b'), shard('c')]);
    expect(rerun.code, rerun.output).toBe(0);
    expect(rerun.output).toMatch(/resumed and finished/);
    expect(rerun.output).toMatch(/verified: 1024 buckets, 400 links/);
    // A process started with the old list is refused; the new list is what counts now.
    const stale = await runHop(['migrate'], env);
    expect(stale.code).not.toBe(0);
    expect(stale.output).toMatch(/set HOP_DATABASE_SHARDS to that list/);

    const shrink = await runHop(['reshard', '--to', [shard('a'), shard('b')].join(','), '--wave', '512'], {
      ...env,
      HOP_DATABASE_SHARDS: [shard('a'), shard('b'), shard('c')].join(','),
    });
    expect(shrink.code, shrink.output).toBe(0);
    expect(shrink.output).toMatch(/verified: 1024 buckets, 400 links/);
    expect(shrink.output).toMatch(/rollups of .*c\.db added/);
    const result = await load.stop();
    // Clicks arrived for frozen buckets: parked, then stored on their new shard (counted in the totals below).
    const parked = [rerun.output, shrink.output].map((out) => Number(/(\d+) clicks parked/.exec(out)?.[1] ?? 0));
    expect(parked[0]! + parked[1]!).toBeGreaterThan(0);
    expect(result.failed, JSON.stringify(result.statuses)).toBe(0);
    expect(result.ok).toBeGreaterThan(100);

    const expected = seeded.clicks + redirected + result.ok;
    const totals = await settle(() => clickTotals(control, [shard('a'), shard('b')]), { links: expected, workspaces: expected, raw: expected });
    expect(totals).toEqual({ links: expected, workspaces: expected, raw: expected });
    // Shard c holds no link any more (its rows were moved and deleted).
    const leftOnC = await clickTotals(control, [shard('c')]);
    expect(leftOnC.links).toBe(0);
  }, 90_000);
});
