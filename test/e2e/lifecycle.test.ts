// The process lifecycle as an orchestrator sees it, on Node (`npm start`) and on Bun: SIGTERM drains (readiness
// 503 while still serving, then exit, leaving no orphan), and a taken port stops the start with a clear message.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startProcess, type Running } from '../support/process.ts';

const run = promisify(execFile);

const runtimes = [
  // SIGTERM goes to npm alone, as an orchestrator sends it: npm start execs node, so the server gets it.
  { name: 'Node, through npm start', command: 'npm', args: ['start'], direct: ['node', 'src/cli/hop.ts', 'serve'] },
  { name: 'Bun', command: 'node_modules/.bin/bun', args: ['src/runtimes/bun.ts'], direct: ['node_modules/.bin/bun', 'src/runtimes/bun.ts'] },
];

describe.each(runtimes)('hop on $name', ({ command, args, direct }) => {
  let dir: string;
  let port: number;
  let hop: Running;
  const env = () => ({ PORT: String(port), HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}` });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hop-life-'));
    port = await freePort();
    hop = await startProcess(command, args, { ...env(), HOP_SHUTDOWN_DELAY_MS: '1500' }, `http://127.0.0.1:${port}`);
  });

  afterAll(async () => {
    await hop.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second server on the same port with a clear message', async () => {
    const result = await run(direct[0]!, direct.slice(1), { env: { ...process.env, ...env() } }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`127.0.0.1:${port} is already in use`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('drains on SIGTERM: 503 readiness while serving, then exits without an orphan', async () => {
    const exited = new Promise<number | null>((resolve) => hop.child.once('exit', (code) => resolve(code)));
    process.kill(hop.child.pid!, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));

    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(503);
    const live = await fetch(`http://127.0.0.1:${port}/livez`);
    expect(live.status).toBe(200);

    await exited;
    // The server itself must be gone too: nothing listens on the port any more.
    await new Promise((r) => setTimeout(r, 2500));
    await expect(fetch(`http://127.0.0.1:${port}/livez`)).rejects.toThrow();
  });
});
