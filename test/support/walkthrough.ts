/**
 * The README's walkthrough block, run verbatim by bash with curl against a running hop (only the base URL and the
 * key are substituted), and the answers every run must show. Used against `npm start`, `npm run dev` and each
 * black-box target.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect } from 'vitest';

function walkthrough(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(readme);
  if (!block) throw new Error('README.md has no walkthrough block');
  return block[1]!;
}

/**
 * Runs the walkthrough against `baseUrl` (where requests go) with `key`, and checks each answer; `publicUrl` is
 * the configured HOP_BASE_URL that short links start with. Returns bash's output.
 */
export async function runWalkthrough(baseUrl: string, key: string, publicUrl = baseUrl): Promise<string> {
  const script = walkthrough()
    .replace(/^export HOP_KEY=.*$/m, `export HOP_KEY=${key}`)
    .replaceAll('http://localhost:8787', baseUrl);
  const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { timeout: 30_000 });

  const shortUrl = `${publicUrl}/launch`.replaceAll('/', '\\/').replaceAll('.', '\\.');
  expect(stdout).toMatch(new RegExp(`"slug":"launch".*"shortUrl":"${shortUrl}"`));
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
  return stdout;
}
