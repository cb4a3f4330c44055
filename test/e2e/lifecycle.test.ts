// The process lifecycle as an orchestrator sees it, on Node and on Bun: SIGTERM to `npm start` drains (readiness 503 while still
// serving, then exit, leaving no orphan), and a taken port stops the start with a clear message.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startProcess, type Running } from '../support/process.ts';

const run = promisify(execFile);
let dir: string;
let port: number;
let hop: Running;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hop-life-'));
  port = await freePort();
  hop = await startProcess(
    'npm',
    ['start'],
    { PORT: String(port), HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`, HOP_SHUTDOWN_DELAY_MS: '1500' },
    `http://127.0.0.1:${port}`,
  );
});

afterAll(async () => {
  await hop.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('hop started with npm start', () => {
  it('refuses a second server on the same port with a clear message', async () => {
    const result = await run('node', ['src/cli/hop.ts', 'serve'], {
      env: { ...process.env, PORT: String(port), HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}` },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`127.0.0.1:${port} is already in use`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('drains on SIGTERM sent to npm alone: 503 readiness while serving, then exits without an orphan', async () => {
    const exited = new Promise<number | null>((resolve) => hop.child.once('exit', (code) => resolve(code)));
    process.kill(hop.child.pid!, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));

    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(503);
    const live = await fetch(`http://127.0.0.1:${port}/livez`);
    expect(live.status).toBe(200);

    await exited;
    // The server itself (npm's child) must be gone too: nothing listens on the port any more.
    await new Promise((r) => setTimeout(r, 2500));
    await expect(fetch(`http://127.0.0.1:${port}/livez`)).rejects.toThrow();
  });
});

describe('hop started on Bun', () => {
  let bunDir: string;
  let bunPort: number;
  let bun: Running;

  beforeAll(async () => {
    bunDir = mkdtempSync(join(tmpdir(), 'hop-life-bun-'));
    bunPort = await freePort();
    bun = await startProcess(
      'node_modules/.bin/bun',
      ['src/runtimes/bun.ts'],
      { PORT: String(bunPort), HOP_DATABASE_URL: `file:${join(bunDir, 'hop.db')}`, HOP_SHUTDOWN_DELAY_MS: '1500' },
      `http://127.0.0.1:${bunPort}`,
    );
  });

  afterAll(async () => {
    await bun.stop();
    rmSync(bunDir, { recursive: true, force: true });
  });

  it('refuses a second server on the same port with a clear message', async () => {
    const result = await run('node_modules/.bin/bun', ['src/runtimes/bun.ts'], {
      env: { ...process.env, PORT: String(bunPort), HOP_DATABASE_URL: `file:${join(bunDir, 'hop.db')}` },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`127.0.0.1:${bunPort} is already in use`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('drains on SIGTERM the same way: 503 readiness while serving, then exits', async () => {
    const exited = new Promise<number | null>((resolve) => bun.child.once('exit', (code) => resolve(code)));
    process.kill(bun.child.pid!, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect((await fetch(`http://127.0.0.1:${bunPort}/readyz`)).status).toBe(503);
    expect((await fetch(`http://127.0.0.1:${bunPort}/livez`)).status).toBe(200);
    expect(await exited).toBe(0);
    await expect(fetch(`http://127.0.0.1:${bunPort}/livez`)).rejects.toThrow();
  });
});
