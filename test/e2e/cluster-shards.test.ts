// Several workers on one host over shards (`hop serve` with HOP_WORKERS=2 and HOP_DATABASE_SHARDS of two files):
// links made through either worker land on their shards, every redirect stores exactly one click on the link's
// shard (none on the control database), and the list and the statistics see both shards.
import Database from 'libsql';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IPHONE } from '../support/agents.ts';
import { createClickLink } from '../support/click-link.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ADMIN = 'v'.repeat(40);
const SLUGS = Array.from({ length: 8 }, (_, i) => `spread-${i}`);

describe('hop serve with HOP_WORKERS=2 over two file shards', () => {
  let dir: string;
  let base: string;
  let hop: Running;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hop-cluster-shards-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    hop = await startProcess(
      'node',
      ['--max-semi-space-size=8', 'bin/hop.js', 'serve'],
      {
        PORT: String(port),
        HOP_DATABASE_URL: `file:${join(dir, 'control.db')}`,
        HOP_DATABASE_SHARDS: `file:${join(dir, 'a.db')},file:${join(dir, 'b.db')}`,
        HOP_WORKERS: '2',
        HOP_ADMIN_TOKEN: ADMIN,
        HOP_LOG_LEVEL: 'warn',
        HOP_SHUTDOWN_DELAY_MS: '0',
        HOP_RATE_LIMIT: 'off',
      },
      base,
      60_000,
    );
  }, 90_000);

  afterAll(async () => {
    await hop?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores one click per redirect on the shard of each link, and lists and counts across both', async () => {
    const first = await createClickLink(base, ADMIN, SLUGS[0]!);
    for (const slug of SLUGS.slice(1)) {
      const made = await fetch(`${base}/v1/links`, { method: 'POST', headers: first.auth, body: JSON.stringify({ url: `https://example.com/${slug}`, slug }) });
      expect(made.status, await made.clone().text()).toBe(201);
    }
    const visits = 5;
    for (const slug of SLUGS) {
      const statuses = await Promise.all(Array.from({ length: visits }, () => fetch(`${base}/${slug}`, { redirect: 'manual', headers: { 'user-agent': IPHONE } }).then((r) => r.status)));
      expect(statuses).toEqual(Array(visits).fill(302));
    }
    const stored = () => {
      const count = (file: string) => {
        const db = new Database(join(dir, file), { readonly: true });
        try {
          return Number((db.prepare('select count(*) as n from clicks').get() as { n: number }).n);
        } finally {
          db.close();
        }
      };
      return { a: count('a.db'), b: count('b.db'), control: count('control.db') };
    };
    for (let i = 0; i < 100 && stored().a + stored().b < SLUGS.length * visits; i++) await sleep(100);
    const where = stored();
    expect(where.a + where.b).toBe(SLUGS.length * visits);
    expect(where.control).toBe(0);
    expect(where.a).toBeGreaterThan(0);
    expect(where.b).toBeGreaterThan(0);

    const list = (await (await fetch(`${base}/v1/links?limit=100`, { headers: first.auth })).json()) as { data: Array<{ slug: string; clicks: number }> };
    expect(list.data.map((l) => l.slug).sort()).toEqual([...SLUGS].sort());
    expect(list.data.every((l) => l.clicks === visits)).toBe(true);
    const stats = await fetch(`${base}/v1/stats`, { headers: first.auth });
    expect(stats.status, await stats.clone().text()).toBe(200);
    expect(((await stats.json()) as { totals: { humans: number } }).totals.humans).toBe(SLUGS.length * visits);
  });
});
