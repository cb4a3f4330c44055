// End to end, the README's way: `npm start` (Node, embedded file) and `npm run dev` (a Worker in wrangler dev over a
// local sqld) as child processes on a free port, then the README's walkthrough block run verbatim by bash with curl
// against each (only the port and the printed key are substituted).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startProcess, type Running } from '../support/process.ts';

const run = promisify(execFile);
const KEY_LINE = /export HOP_KEY=(hop_[0-9A-Za-z]{43})/;

function walkthrough(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(readme);
  if (!block) throw new Error('README.md has no walkthrough block');
  return block[1]!;
}

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
    const script = walkthrough()
      .replace(/^export HOP_KEY=.*$/m, `export HOP_KEY=${key}`)
      .replaceAll('localhost:8787', `localhost:${port}`);
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], { timeout: 30_000 });

    expect(stdout).toContain('"name":"default"');
    expect(stdout).toMatch(/"slug":"launch".*"shortUrl":"http:\/\/localhost:\d+\/launch"/);
    expect(stdout).toMatch(/HTTP\/1\.1 302 Found[\s\S]*?location: https:\/\/example\.com\/launch\?utm_source=readme/i);
    expect(stdout).toMatch(/"data":\[\{"id":"lnk_[0-9a-f]{32}"/);
    expect(stdout).toMatch(/"url":"https:\/\/example\.org\/new-home","title":null[^\n]*"redirectStatus":301/);
    expect(stdout).toMatch(/HTTP\/1\.1 301 Moved Permanently[\s\S]*?location: https:\/\/example\.org\/new-home/i);
    expect(stdout).toMatch(/"name":"dashboard".*"scopes":\["links:read"\].*"key":"hop_[0-9A-Za-z]{43}"/);
    expect(stdout).toContain('"type":"urn:hop:problem:validation"');
    expect(stdout).toMatch(/"field":"url","message":"must use http or https".*"field":"slug","message":"is reserved"/);
    // curl -s prints JSON without a trailing newline, so the status code follows the previous answer directly.
    expect(stdout).toMatch(/(^|\})204$/m);
    expect(stdout.trimEnd()).toMatch(/"status":404,"detail":"There is no short link at this address\.".*\}$/);
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
