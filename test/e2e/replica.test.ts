// hop on Node as an embedded replica of a real sqld primary: reads served from the local file, writes forwarded to
// the primary and read back at once; with the primary down at start, a replica that synced before serves its copy
// read-only (writes 503) and says so; one that never synced refuses to start with a clear message.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSqld, type Sqld } from '../../src/cli/sqld.ts';
import { expectProblem } from '../helpers/app.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { sqldAvailable } from '../support/sqld.ts';

const run = promisify(execFile);
const ADMIN = 'r'.repeat(40);
let dir: string;
let primary: Sqld;
let hop: Running | undefined;

async function startReplica(file: string) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    PORT: String(port),
    HOP_DATABASE_URL: `file:${join(dir, file)}`,
    HOP_DATABASE_SYNC_URL: primary.url,
    HOP_DATABASE_SYNC_INTERVAL_S: '1',
    HOP_ADMIN_TOKEN: ADMIN,
    HOP_LOG_LEVEL: 'warn',
  };
  hop = await startProcess('node', ['src/runtimes/node.ts'], env, base);
  return { base, env };
}

describe.runIf(sqldAvailable())('an embedded replica of sqld', () => {
  let base: string;
  let key: string;
  const auth = () => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hop-replica-'));
    primary = await startSqld({ dir: join(dir, 'primary') });
    await run('node', ['src/cli/hop.ts', 'migrate'], { env: { ...process.env, HOP_DATABASE_URL: primary.url } });
    ({ base } = await startReplica('replica.db'));
  });

  afterAll(async () => {
    await hop?.stop();
    await primary?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('forwards writes to the primary and reads them back at once, through the API and the redirect', async () => {
    const created = await fetch(`${base}/v1/workspaces`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'replicated' }),
    });
    expect(created.status).toBe(201);
    key = ((await created.json()) as { apiKey: { key: string } }).apiKey.key;
    const link = await fetch(`${base}/v1/links`, {
      method: 'POST',
      headers: auth(),
      body: JSON.stringify({ url: 'https://example.com/replica', slug: 'rep' }),
    });
    expect(link.status).toBe(201);
    const redirect = await fetch(`${base}/rep`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('https://example.com/replica');

    const onPrimary = await fetch(`${primary.url}/v2/pipeline`, {
      method: 'POST',
      body: JSON.stringify({ requests: [{ type: 'execute', stmt: { sql: "select url from links where slug = 'rep'" } }] }),
    });
    expect(JSON.stringify(await onPrimary.json())).toContain('https://example.com/replica');
  });

  it('serves its local copy read-only when the primary is down at start, and says so', async () => {
    await hop!.stop();
    await primary.stop();
    const { base: offline } = await startReplica('replica.db');
    expect(hop!.output()).toMatch(/replica primary unreachable at start; serving the local replica read-only/);

    const redirect = await fetch(`${offline}/rep`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    const list = await fetch(`${offline}/v1/links`, { headers: auth() });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { data: unknown[] }).data).toHaveLength(1);

    const write = await fetch(`${offline}/v1/links`, {
      method: 'POST',
      headers: auth(),
      body: JSON.stringify({ url: 'https://example.com/offline', slug: 'offline' }),
    });
    const problem = await expectProblem(write, 503, 'unavailable');
    expect(problem.detail).toMatch(/read-only while its primary cannot be reached/);
    expect(write.headers.get('retry-after')).toBe('1');
    expect((await fetch(`${offline}/offline`, { redirect: 'manual' })).status).toBe(404);
  });

  it('refuses to start a replica that never synced while the primary is down', async () => {
    await hop!.stop();
    const port = await freePort();
    const result = await run('node', ['src/runtimes/node.ts'], {
      env: {
        ...process.env,
        PORT: String(port),
        HOP_DATABASE_URL: `file:${join(dir, 'fresh.db')}`,
        HOP_DATABASE_SYNC_URL: primary.url,
      },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot be reached .* holds no earlier replica to serve; start again once the primary is up/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
