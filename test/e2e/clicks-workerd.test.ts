// After N redirects through the redirect Worker in workerd, exactly N clicks are stored: one `wrangler dev` runs the
// Workers of wrangler.toml and wrangler.consumer.toml over a local sqld, the redirect sends each click to the
// session's local queue and the click consumer stores it. Checked through the API (the link's `clicks`) and in sqld
// itself, and again after a pause, so a late redelivery would show. Twice: the black-box workerd target, and
// `npm run dev` as a developer starts it (its own sqld, the admin key it prints).
import { createClient } from '@libsql/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findSqld } from '../../src/cli/sqld.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';

const BROWSER = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15';
const ROUNDS = 5;
const CONCURRENT = 50;
// Not a multiple of the batch size (100): the last batch leaves the queue on max_batch_timeout, not on size.
const N = ROUNDS * CONCURRENT;

async function json<T>(res: Response): Promise<T> {
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return (await res.json()) as T;
}

/** Creates a link with `key`, visits it N times, and expects exactly N clicks through the API and in sqld. */
async function expectExactlyNClicks(baseUrl: string, key: string, sqldUrl: string, label: string) {
  const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const { id, slug } = await json<{ id: string; slug: string }>(
    await fetch(`${baseUrl}/v1/links`, { method: 'POST', headers: auth, body: JSON.stringify({ url: 'https://example.com/' }) }),
  );
  const clicks = async () => (await json<{ clicks: number }>(await fetch(`${baseUrl}/v1/links/${id}`, { headers: auth }))).clicks;

  const visit = () => fetch(`${baseUrl}/${slug}`, { redirect: 'manual', headers: { 'user-agent': BROWSER } }).then((r) => r.status);
  for (let round = 0; round < ROUNDS; round++) {
    expect(await Promise.all(Array.from({ length: CONCURRENT }, visit))).toEqual(Array(CONCURRENT).fill(302));
  }

  // The local queue hands a batch over when it is full or after max_batch_timeout (1 s, wrangler.consumer.toml).
  const started = Date.now();
  let seen = await clicks();
  while (seen < N && Date.now() - started < 15_000) {
    await new Promise((r) => setTimeout(r, 250));
    seen = await clicks();
  }
  expect(seen).toBe(N);
  console.log(`${label}: ${N} clicks stored ${Date.now() - started} ms after the last redirect`);

  // Longer than a batch timeout and the first retry delay: nothing arrives twice.
  await new Promise((r) => setTimeout(r, 2500));
  expect(await clicks()).toBe(N);
  const db = createClient({ url: sqldUrl });
  try {
    const rows = await db.execute({ sql: 'select count(*) as n, sum(bot) as bots from clicks where link_id = ?', args: [id] });
    expect(rows.rows[0]).toMatchObject({ n: N, bots: 0 });
  } finally {
    db.close();
  }
}

describeTarget(
  { runtime: 'workerd', storage: 'sqld' },
  (target) => {
    it(`stores exactly ${N} clicks for ${N} redirects`, async () => {
      const { baseUrl, adminToken, sqld } = target();
      const ws = await json<{ apiKey: { key: string } }>(
        await fetch(`${baseUrl}/v1/workspaces`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'clicks' }),
        }),
      );
      await expectExactlyNClicks(baseUrl, ws.apiKey.key, sqld!.url, 'black-box workerd target');
    }, 60_000);
  },
  'clicks on workerd (wrangler dev: redirect Worker + click consumer, sqld)',
);

describe.skipIf(!findSqld() && process.env.CI !== 'true')('clicks under `npm run dev`', () => {
  let dir: string;
  let hop: Running | undefined;
  let baseUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hop-dev-clicks-'));
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const env = { PORT: String(port), HOP_LOG_LEVEL: 'warn', HOP_DEV_SQLD_DIR: join(dir, 'sqld'), WRANGLER_REGISTRY_PATH: join(dir, 'registry') };
    hop = await startProcess('npm', ['run', 'dev'], env, baseUrl, 45_000);
  }, 60_000);

  afterAll(async () => {
    await hop?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it(`stores exactly ${N} clicks for ${N} redirects`, async () => {
    const key = /export HOP_KEY=(hop_[0-9A-Za-z]+)/.exec(hop!.output())?.[1];
    const sqldUrl = /dev: sqld (http:\/\/\S+)/.exec(hop!.output())?.[1];
    expect(key, hop!.output()).toBeDefined();
    expect(sqldUrl, hop!.output()).toBeDefined();
    await expectExactlyNClicks(baseUrl, key!, sqldUrl!, 'npm run dev');
  }, 60_000);
});
