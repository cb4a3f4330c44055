// After N redirects through the redirect Worker in workerd, exactly N clicks are stored: `wrangler dev` runs both
// Workers of wrangler.toml and wrangler.consumer.toml over a local sqld (the black-box workerd target), the redirect
// sends each click to the session's local queue and the click consumer stores it. Checked through the API (the
// link's `clicks`) and in sqld itself, and again after a pause, so a late redelivery would show.
import { createClient } from '@libsql/client';
import { expect, it } from 'vitest';
import { describeTarget } from '../blackbox/targets.ts';

const BROWSER = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15';
const ROUNDS = 5;
const CONCURRENT = 50;
const N = ROUNDS * CONCURRENT;

async function json<T>(res: Response): Promise<T> {
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return (await res.json()) as T;
}

describeTarget(
  { runtime: 'workerd', storage: 'sqld' },
  (target) => {
    it(`stores exactly ${N} clicks for ${N} redirects`, async () => {
      const { baseUrl, adminToken, sqld } = target();
      const admin = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
      const ws = await json<{ apiKey: { key: string } }>(
        await fetch(`${baseUrl}/v1/workspaces`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'clicks' }) }),
      );
      const auth = { authorization: `Bearer ${ws.apiKey.key}`, 'content-type': 'application/json' };
      const { id } = await json<{ id: string }>(
        await fetch(`${baseUrl}/v1/links`, { method: 'POST', headers: auth, body: JSON.stringify({ url: 'https://example.com/', slug: 'n' }) }),
      );
      const clicks = async () => (await json<{ clicks: number }>(await fetch(`${baseUrl}/v1/links/${id}`, { headers: auth }))).clicks;

      const visit = () => fetch(`${baseUrl}/n`, { redirect: 'manual', headers: { 'user-agent': BROWSER } }).then((r) => r.status);
      for (let round = 0; round < ROUNDS; round++) {
        expect(await Promise.all(Array.from({ length: CONCURRENT }, visit))).toEqual(Array(CONCURRENT).fill(302));
      }

      // The local queue hands batches over after at most max_batch_timeout (1 s, wrangler.consumer.toml).
      const started = Date.now();
      let seen = await clicks();
      while (seen < N && Date.now() - started < 15_000) {
        await new Promise((r) => setTimeout(r, 250));
        seen = await clicks();
      }
      expect(seen).toBe(N);
      console.log(`workerd: ${N} clicks stored ${Date.now() - started} ms after the last redirect`);

      // Longer than a batch timeout and the first retry delay: nothing arrives twice.
      await new Promise((r) => setTimeout(r, 2500));
      expect(await clicks()).toBe(N);
      const db = createClient({ url: sqld!.url });
      try {
        const rows = await db.execute({ sql: 'select count(*) as n, sum(bot) as bots from clicks where link_id = ?', args: [id] });
        expect(rows.rows[0]).toMatchObject({ n: N, bots: 0 });
      } finally {
        db.close();
      }
    }, 60_000);
  },
  'clicks on workerd (wrangler dev: redirect Worker + click consumer, sqld)',
);
