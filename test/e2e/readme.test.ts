// End to end, the README's way: `npm start` (Node, embedded file) and `npm run dev` (a Worker in wrangler dev over a
// local sqld) as child processes on a free port, then the README's walkthrough block run verbatim by bash with curl
// against each (only the port and the printed key are substituted).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { runWalkthrough } from '../support/walkthrough.ts';

const run = promisify(execFile);
const KEY_LINE = /export HOP_KEY=(hop_[0-9A-Za-z]{43})/;


const commands = [
  { script: 'start', env: (dir: string) => ({ HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`, HOP_SHUTDOWN_DELAY_MS: '0' }) },
  { script: 'dev', env: (dir: string) => ({ HOP_DEV_SQLD_DIR: join(dir, 'sqld') }) },
];

describe.each(commands)('README walkthrough against `npm run $script`', ({ script, env: envFor }) => {
  let dir: string;
  let port: number;
  let hop: Running;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hop-e2e-'));
    port = await freePort();
    env = { PORT: String(port), HOP_LOG_LEVEL: 'warn', ...envFor(dir) };
    hop = await startProcess('npm', ['run', script], env, `http://127.0.0.1:${port}`, 40_000);
  });

  afterAll(async () => {
    await hop?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the admin key of the new default workspace once, clearly', () => {
    expect(hop.output()).toMatch(KEY_LINE);
    expect(hop.output()).toContain('shown ONCE');
  });

  it('runs every command of the walkthrough with the expected answers', async () => {
    const key = KEY_LINE.exec(hop.output())![1]!;
    const stdout = await runWalkthrough(`http://localhost:${port}`, key);
    expect(stdout).toContain('"name":"default"');
  });

  it('never prints the key again on the next start', async () => {
    await hop.stop();
    hop = await startProcess('npm', ['run', script], env, `http://127.0.0.1:${port}`, 40_000);
    expect(hop.output()).not.toMatch(/hop_[0-9A-Za-z]{43}/);
    const res = await fetch(`http://127.0.0.1:${port}/v1/workspace`);
    expect(res.status).toBe(401);
  });
});

describe('configuration errors stop the start', () => {
  it('names the bad variable and exits non-zero', async () => {
    const result = await run('node', ['src/cli/hop.ts', 'serve'], {
      env: { ...process.env, PORT: 'eighty', HOP_LOG_SAMPLE_RATE: '3' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PORT');
    expect(result.stderr).toContain('HOP_LOG_SAMPLE_RATE');
  });
});
