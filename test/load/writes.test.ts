// Bursts of writes on one remote primary (sqld) and on the embedded file, as a new user would send them: each run is
// 5 bursts of 200 concurrent POST /v1/links with two tags, then 100 PATCH and 100 DELETE of that burst's links at
// once. Every write must succeed, on Node and Bun (three runs in one process), on Node reaching sqld by WebSocket
// (libsql://…?tls=0) as well as over HTTP, on workerd (one run) and on the file; a primary frozen for 5 s answers 503
// within the deadline and recovers within 3 s, with nothing written twice or lost once acknowledged, and hop killed
// mid-burst leaves the primary taking writes, over either transport; two processes share one file.
// Heavy (minutes): `npm run test:load`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { createClient } from '@libsql/client';
import { startSqld, webSocketUrl } from '../../src/cli/sqld.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { sqldAvailable } from '../support/sqld.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { GENEROUS_RATE_LIMITS } from '../support/rate-limits.ts';
import { missingPrerequisite, startTarget, type Target, type TargetSpec } from '../blackbox/targets.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEADLINE_MS = 2000;
const QUEUE_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Client {
  baseUrl: string;
  key: string;
}

async function workspace(baseUrl: string, adminToken: string, name: string): Promise<Client> {
  const res = await fetch(`${baseUrl}/v1/workspaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (res.status !== 201) throw new Error(`workspace: ${res.status} ${await res.text()}`);
  return { baseUrl, key: ((await res.json()) as { apiKey: { key: string } }).apiKey.key };
}

function call(c: Client, path: string, init: { method: string; json?: unknown; headers?: Record<string, string> }) {
  return fetch(`${c.baseUrl}${path}`, {
    method: init.method,
    headers: { authorization: `Bearer ${c.key}`, 'content-type': 'application/json', ...init.headers },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
}

/** One run of the issue's bursts; returns every answer that was not the expected success. */
async function bursts(c: Client, run: string, size = 200): Promise<string[]> {
  const failures: string[] = [];
  const expect = async (res: Response, status: number, what: string) => {
    if (res.status !== status) failures.push(`${what}: ${res.status} ${await res.text()}`);
    return res.status === status;
  };
  for (let b = 0; b < 5; b++) {
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: size }, async (_, i) => {
        const res = await call(c, '/v1/links', { method: 'POST', json: { url: `https://example.com/${run}/${b}/${i}`, tags: ['burst', `t${i % 5}`] } });
        if (await expect(res, 201, 'POST')) ids.push(((await res.json()) as { id: string }).id);
      }),
    );
    const half = Math.floor(ids.length / 2);
    await Promise.all([
      ...ids.slice(0, half).map(async (id) =>
        expect(await call(c, `/v1/links/${id}`, { method: 'PATCH', json: { url: `https://example.com/p/${id}`, tags: ['moved'] } }), 200, 'PATCH'),
      ),
      ...ids.slice(half).map(async (id) => expect(await call(c, `/v1/links/${id}`, { method: 'DELETE' }), 204, 'DELETE')),
    ]);
  }
  return failures;
}

/** Counts, keeping the first few lines of each kind: a failure message stays short. */
function summarize(failures: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of failures) out[f.slice(0, 200)] = (out[f.slice(0, 200)] ?? 0) + 1;
  return out;
}

const running: Target[] = [];
afterAll(async () => {
  await Promise.all(running.map((t) => t.stop()));
}, 60_000);

async function target(spec: TargetSpec): Promise<Target> {
  const t = await startTarget({ ...spec, env: { HOP_RATE_LIMIT: 'off', ...spec.env } });
  running.push(t);
  return t;
}

function requirement(spec: TargetSpec): boolean {
  const reason = missingPrerequisite(spec);
  if (!reason) return true;
  if (process.env.CI === 'true') throw new Error(reason);
  console.warn(`[load] ${spec.runtime} + ${spec.storage} skipped: ${reason}`);
  return false;
}

describe('bursts of writes', () => {
  for (const [runtime, transport] of [['node', 'http'], ['bun', 'http'], ['node', 'ws']] as const) {
    const over = transport === 'ws' ? ' by WebSocket' : '';
    it.runIf(requirement({ runtime, storage: 'sqld' }))(`${runtime} over one sqld primary${over}: 2,000 of 2,000 writes, three runs in one process`, async () => {
      const t = await target({ runtime, storage: 'sqld', transport });
      const c = await workspace(t.baseUrl, t.adminToken, 'bursts');
      for (let run = 0; run < 3; run++) expect(summarize(await bursts(c, `${runtime}-${transport}-${run}`)), `run ${run}`).toEqual({});
      expect(t.output()).not.toMatch(/manually closed/i);
    }, 300_000);
  }

  it.runIf(requirement({ runtime: 'workerd', storage: 'sqld' }))('workerd over one sqld primary: 2,000 of 2,000 writes', async () => {
    const t = await target({ runtime: 'workerd', storage: 'sqld' });
    const c = await workspace(t.baseUrl, t.adminToken, 'bursts');
    expect(summarize(await bursts(c, 'workerd'))).toEqual({});
    expect(t.output()).not.toMatch(/manually closed/i);
  }, 300_000);

  it('node on the embedded file: 2,000 of 2,000 writes', async () => {
    const t = await target({ runtime: 'node', storage: 'file' });
    const c = await workspace(t.baseUrl, t.adminToken, 'bursts');
    expect(summarize(await bursts(c, 'file'))).toEqual({});
  }, 300_000);
});

describe.runIf(sqldAvailable()).each(['http', 'ws'] as const)('a primary that stops answering (%s)', (transport) => {
  it('frozen 5 s during a burst: 503 within the deadline, writes again within 3 s of SIGCONT, nothing stored twice or lost', async () => {
    const t = await target({ runtime: 'node', storage: 'sqld', transport });
    const c = await workspace(t.baseUrl, t.adminToken, 'freeze');
    const body = (i: number) => ({ url: `https://example.com/freeze/${i}`, tags: ['freeze'] });
    const create = (i: number) => call(c, '/v1/links', { method: 'POST', json: body(i), headers: { 'idempotency-key': `freeze-${i}` } });
    const acknowledged = new Map<number, string>();
    const refused: number[] = [];
    const slow: string[] = [];
    let stopped = false;
    // Creates keep coming, 50 at a time, before, during and after the freeze.
    const load = (async () => {
      for (let wave = 0; !stopped || wave < 2; wave++) {
        await Promise.all(
          Array.from({ length: 50 }, async (_, j) => {
            const i = wave * 50 + j;
            const start = Date.now();
            const res = await create(i);
            const took = Date.now() - start;
            if (res.status === 201) acknowledged.set(i, ((await res.json()) as { id: string }).id);
            else {
              const problem = (await res.json()) as { status: number; detail: string };
              expect(problem.status, problem.detail).toBe(503);
              refused.push(i);
            }
            // Each database call has the deadline once sent, and a bounded wait for its turn; a request makes at most
            // three calls before its write, and the freeze holds every one of them up.
            if (took > 3 * DEADLINE_MS + QUEUE_MS + 1000) slow.push(`${res.status} after ${took} ms`);
          }),
        );
        if (wave > 200) throw new Error('the load never ended');
      }
    })();
    await sleep(1000);
    t.sqld!.current.signal('SIGSTOP');
    await sleep(5000);
    t.sqld!.current.signal('SIGCONT');
    const resumed = Date.now();
    // A new write succeeds within 3 s of the primary resuming.
    let recoveredAfter: number | undefined;
    while (Date.now() - resumed < 10_000) {
      const res = await call(c, '/v1/links', { method: 'POST', json: { url: 'https://example.com/after' } });
      if (res.status === 201) {
        recoveredAfter = Date.now() - resumed;
        break;
      }
      await sleep(100);
    }
    stopped = true;
    await load;
    expect(refused.length, 'the freeze refused some writes').toBeGreaterThan(0);
    expect(slow).toEqual([]);
    expect(recoveredAfter).toBeLessThan(3000);

    // Every refused create, retried with its key, succeeds; every create is stored exactly once.
    // A retry whose first attempt's record could not be released (the primary was frozen) waits out its pending time.
    for (const i of refused) {
      let res = await create(i);
      for (const until = Date.now() + 15_000; res.status === 409 && Date.now() < until; res = await create(i)) await sleep(1000);
      expect(res.status, await res.clone().text()).toBe(201);
      acknowledged.set(i, ((await res.json()) as { id: string }).id);
    }
    const urls: string[] = [];
    for (let cursor: string | null = ''; cursor !== null; ) {
      const res = await call(c, `/v1/links?tag=freeze&limit=100${cursor ? `&cursor=${cursor}` : ''}`, { method: 'GET' });
      const page = (await res.json()) as { data: Array<{ id: string; url: string }>; nextCursor: string | null };
      urls.push(...page.data.map((l) => l.url));
      const ids = new Set(page.data.map((l) => l.id));
      for (const l of page.data) expect(ids.has(l.id)).toBe(true);
      cursor = page.nextCursor;
    }
    const stored = new Map<string, number>();
    for (const u of urls) stored.set(u, (stored.get(u) ?? 0) + 1);
    expect([...stored].filter(([, n]) => n > 1), 'stored twice').toEqual([]);
    expect(stored.size).toBe(acknowledged.size);
    for (const [i, id] of acknowledged) {
      const res = await call(c, `/v1/links/${id}`, { method: 'GET' });
      expect(res.status, `acknowledged create ${i} lost`).toBe(200);
    }
  }, 180_000);

  it('hop killed mid-burst leaves the primary taking writes within 3 s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-load-kill-'));
    const sqld = await startSqld({ dir: join(dir, 'sqld') });
    try {
      const hop = await startHop(transport === 'ws' ? webSocketUrl(sqld.url) : sqld.url);
      const c = await workspace(hop.baseUrl, ADMIN, 'kill');
      const burst = bursts(c, 'kill').catch(() => []);
      await sleep(1500);
      hop.running.child.kill('SIGKILL');
      await burst;
      const killed = Date.now();
      const direct = createClient({ url: sqld.url });
      let wroteAfter: number | undefined;
      while (Date.now() - killed < 10_000) {
        try {
          await direct.batch(['create table if not exists load_probe (x integer)', 'insert into load_probe values (1)'], 'write');
          wroteAfter = Date.now() - killed;
          break;
        } catch {
          await sleep(100);
        }
      }
      direct.close();
      expect(wroteAfter).toBeLessThan(3000);
      await hop.running.stop();
    } finally {
      await sqld.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('two processes on one embedded file', () => {
  it('both take a burst of 200 concurrent creations at once: 400 of 400', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-load-two-'));
    const url = `file:${join(dir, 'hop.db')}`;
    const a = await startHop(url);
    const b = await startHop(url);
    try {
      const ca = await workspace(a.baseUrl, ADMIN, 'a');
      const cb = { ...ca, baseUrl: b.baseUrl };
      const create = (c: Client, i: number) => call(c, '/v1/links', { method: 'POST', json: { url: `https://example.com/two/${i}`, tags: ['two'] } });
      const answers = await Promise.all(Array.from({ length: 400 }, async (_, i) => {
        const res = await create(i % 2 ? cb : ca, i);
        return res.status === 201 ? '201' : `${res.status} ${await res.text()}`;
      }));
      expect(summarize(answers.filter((x) => x !== '201'))).toEqual({});
      let count = 0;
      for (let cursor: string | null = ''; cursor !== null; ) {
        const page = (await (await call(ca, `/v1/links?tag=two&limit=100${cursor ? `&cursor=${cursor}` : ''}`, { method: 'GET' })).json()) as {
          data: unknown[];
          nextCursor: string | null;
        };
        count += page.data.length;
        cursor = page.nextCursor;
      }
      expect(count).toBe(400);
    } finally {
      await Promise.all([a.running.stop(), b.running.stop()]);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

const ADMIN = `load-operator-${'x'.repeat(24)}`;

/** hop on Node as `npm start` runs it (migrating an embedded file itself; a remote one must be migrated first). */
async function startHop(databaseUrl: string): Promise<{ running: Running; baseUrl: string }> {
  if (!databaseUrl.startsWith('file:')) {
    const migrate = await startProcessExit(process.execPath, [join(ROOT, 'bin/hop.js'), 'migrate'], { HOP_DATABASE_URL: databaseUrl });
    if (migrate !== 0) throw new Error(`hop migrate exited ${migrate}`);
  }
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const running = await startProcess(process.execPath, [join(ROOT, 'bin/hop.js'), 'serve'], {
    ...GENEROUS_RATE_LIMITS,
    HOP_DATABASE_URL: databaseUrl,
    HOP_ADMIN_TOKEN: ADMIN,
    HOP_RATE_LIMIT: 'off',
    HOP_LOG_LEVEL: 'warn',
    HOP_SHUTDOWN_DELAY_MS: '0',
    PORT: String(port),
    HOST: '127.0.0.1',
  }, baseUrl);
  return { running, baseUrl };
}

function startProcessExit(command: string, args: string[], env: Record<string, string>): Promise<number | null> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
