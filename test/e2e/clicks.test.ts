// After N redirects through hop on Node and on Bun (embedded file, in-process queue), exactly N clicks are stored:
// counted while the server runs, and flushed when it is stopped with clicks still buffered.
import Database from 'libsql';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startProcess } from '../support/process.ts';
import { createClickLink } from '../support/click-link.ts';

const ADMIN = 'c'.repeat(40);
const BROWSER = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15';
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const runtimes = [
  { name: 'Node', command: 'node', args: ['src/runtimes/node.ts'] },
  { name: 'Bun', command: 'node_modules/.bin/bun', args: ['src/runtimes/bun.ts'] },
];

describe.each(runtimes)('clicks on $name', ({ command, args }) => {
  it('stores exactly N clicks for N redirects, the last ones flushed at shutdown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-clicks-'));
    dirs.push(dir);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = { PORT: String(port), HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`, HOP_ADMIN_TOKEN: ADMIN, HOP_LOG_LEVEL: 'warn', HOP_SHUTDOWN_DELAY_MS: '0' };
    const hop = await startProcess(command, args, env, base);
    try {
      const link = await createClickLink(base, ADMIN, 'n', BROWSER);

      for (let round = 0; round < 5; round++) {
        expect(await link.visit(50)).toEqual(Array(50).fill(302));
      }
      // The in-process queue flushes within a second; a loaded machine (other test files in parallel) may take longer.
      for (const until = Date.now() + 10_000; (await link.clicks()) < 250 && Date.now() < until; ) {
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(await link.clicks()).toBe(250);
      // What became of them, as /metrics shows it: all handed to the consumer, none refused, none waiting.
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toContain('hop_click_queue_events_total{queue="memory",result="delivered"} 250');
      expect(metrics).toContain('hop_click_queue_events_total{queue="memory",result="refused"} 0');
      expect(metrics).toContain('hop_click_queue_buffered{queue="memory"} 0');

      // 50 more, then stop at once: those are still buffered and must be stored before the process exits.
      expect(await link.visit(50)).toEqual(Array(50).fill(302));
    } finally {
      await hop.stop();
    }
    const db = new Database(join(dir, 'hop.db'), { readonly: true });
    try {
      expect(db.prepare('select count(*) as n from clicks').get()).toMatchObject({ n: 300 });
      expect(db.prepare("select clicks from links where slug = 'n'").get()).toMatchObject({ clicks: 300 });
    } finally {
      db.close();
    }
  });
});
