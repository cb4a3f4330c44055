// Clicks into a remote primary under overload: hop on Node (`npm start`'s command) and on Bun over a real sqld, the in-process
// queue consumed on the main thread over HTTP. A burst of redirects runs while the primary is frozen (SIGSTOP: the
// consumer commits nothing), so the backlog reaches its bound and redirects are refused with 503 + Retry-After;
// then the primary resumes, and once the queue has drained every redirect served has exactly one stored click
// (raw rows, rollups and the link's count alike), nothing is stored twice (a batch whose request was cut off by
// the freeze may have committed; its retry finds it stored), and hop's memory stayed within the clicks budget.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createClient } from '@libsql/client';
import { afterAll, describe, expect, it } from 'vitest';
import { startSqld } from '../../src/cli/sqld.ts';
import { createClickLink } from '../support/click-link.ts';
import { IPHONE } from '../support/agents.ts';
import { freePort, startProcess } from '../support/process.ts';
import { sqldAvailable } from '../support/sqld.ts';

const ADMIN = 'd'.repeat(40);
const BOUND = 3000;
const CONNECTIONS = 50;
// docs/architecture.md, "Memory": peak RSS under saturation, both threads, on Node.
const PEAK_RSS_BUDGET_MB = 250;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const runtimes = [
  { name: 'Node', command: process.execPath, args: ['--max-semi-space-size=8', 'bin/hop.js', 'serve'] },
  { name: 'Bun', command: 'node_modules/.bin/bun', args: ['src/runtimes/bun.ts'] },
];

/** `CONNECTIONS` loops, each sending the next redirect when the last answered, until `stop()`. */
function load(url: string) {
  const counts = { served: 0, refused: 0, other: [] as number[], failed: 0, retryAfter: new Set<string | null>() };
  let running = true;
  const loop = async () => {
    while (running) {
      try {
        const res = await fetch(url, { redirect: 'manual', headers: { 'user-agent': IPHONE } });
        await res.arrayBuffer();
        if (res.status >= 300 && res.status < 400) counts.served += 1;
        else if (res.status === 503) {
          counts.refused += 1;
          counts.retryAfter.add(res.headers.get('retry-after'));
        } else counts.other.push(res.status);
      } catch {
        counts.failed += 1;
        await sleep(10);
      }
    }
  };
  const loops = Array.from({ length: CONNECTIONS }, loop);
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
      return counts;
    },
  };
}

const metric = async (base: string, name: string) =>
  Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(`${base}/metrics`)).text())?.[1] ?? NaN);

/** The kernel's high-water mark of a process's RSS (every thread), in MB. */
const peakRssMb = (pid: number) => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

describe.runIf(sqldAvailable()).each(runtimes)('clicks into a remote primary (sqld) on $name', ({ command, args }) => {
  it('stores a click for every redirect served through a burst the consumer cannot commit, within the memory budget', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-clicks-sqld-'));
    dirs.push(dir);
    const sqld = await startSqld({ dir: join(dir, 'sqld') });
    const db = createClient({ url: sqld.url });
    try {
      execFileSync(process.execPath, ['src/cli/hop.ts', 'migrate'], { env: { ...process.env, HOP_DATABASE_URL: sqld.url }, stdio: 'ignore' });
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const hop = await startProcess(
        command,
        args,
        {
          PORT: String(port),
          HOP_DATABASE_URL: sqld.url,
          HOP_ADMIN_TOKEN: ADMIN,
          HOP_LOG_LEVEL: 'warn',
          HOP_SHUTDOWN_DELAY_MS: '0',
          HOP_QUEUE_MAX_BUFFERED: String(BOUND),
          HOP_RATE_LIMIT_REDIRECT: '1000000000/60s',
        },
        base,
      );
      let counts;
      try {
        const link = await createClickLink(base, ADMIN, 'burst');
        // The first answer fills the link cache: redirects go on answering while the primary is frozen.
        expect(await link.visit(1)).toEqual([302]);
        const traffic = load(`${base}/burst`);
        await sleep(1000);
        sqld.signal('SIGSTOP');
        try {
          // Frozen: the consumer's batch waits past its deadline, the backlog reaches the bound, redirects are refused.
          const deadline = Date.now() + 6000;
          while (traffic.counts.refused < 200 && Date.now() < deadline) await sleep(50);
        } finally {
          sqld.signal('SIGCONT');
        }
        await sleep(2000);
        counts = await traffic.stop();
        const drained = Date.now() + 30_000;
        while ((await metric(base, 'hop_click_queue_buffered\\{queue="memory"\\}')) > 0 && Date.now() < drained) await sleep(100);
        expect(counts.refused).toBeGreaterThanOrEqual(200);
        expect([...counts.retryAfter]).toEqual(['1']);
        expect(counts).toMatchObject({ other: [], failed: 0 });
        expect(await metric(base, 'hop_click_queue_buffered_max\\{queue="memory"\\}')).toBe(BOUND);
        expect(await metric(base, 'hop_click_queue_events_total\\{queue="memory",result="refused"\\}')).toBe(counts.refused);
        expect(await metric(base, 'hop_click_queue_buffered\\{queue="memory"\\}')).toBe(0);
        expect(peakRssMb(hop.child.pid!)).toBeLessThanOrEqual(PEAK_RSS_BUDGET_MB);
        // The link's own count (humans: an iPhone's user agent), as a client reads it.
        expect(await link.clicks()).toBe(counts.served + 1);
      } finally {
        await hop.stop();
      }
      // Every answer was awaited, so the counts are exact: one stored click per redirect served (and the first
      // visit), none per refusal, and none twice in the rows or the rollups.
      const { rows } = await db.execute(
        'select (select count(*) from clicks) as raw, (select count(distinct id) from clicks) as ids, ' +
          '(select sum(humans) + sum(bots) from click_totals) as rolled',
      );
      expect(rows[0]).toMatchObject({ raw: counts.served + 1, ids: counts.served + 1, rolled: counts.served + 1 });
    } finally {
      db.close();
      await sqld.stop();
    }
  });
});
