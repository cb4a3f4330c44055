// hop's pages in a real browser with no network but loopback: /docs renders the API reference from assets hop
// serves itself (no CDN) under its Content-Security-Policy, and / shows the landing page. Screenshots of both are
// left in the directory this test prints, to look at. Needs chromium (test/support/chromium.ts).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, render } from '../support/chromium.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** What the console says when the CSP blocks something or a load fails (a CDN that does not resolve offline). */
const REFUSED = /Content Security Policy|Failed to load resource|ERR_NAME_NOT_RESOLVED|net::ERR_/;

describe.skipIf(!chromiumAvailable())('hop in a browser, offline', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hop-browser-'));
  const shots = join(tmpdir(), 'hop-browser-screenshots');
  let hop: Running | undefined;
  let baseUrl = '';

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const env = {
      HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
      HOP_BASE_URL: baseUrl,
      HOP_LOG_LEVEL: 'warn',
      PORT: String(port),
      HOST: '127.0.0.1',
      HOP_SHUTDOWN_DELAY_MS: '0',
    };
    hop = await startProcess(process.execPath, [join(ROOT, 'src/runtimes/node.ts')], env, baseUrl);
    console.log(`[browser] screenshots in ${shots}`);
  }, 60_000);

  afterAll(async () => {
    await hop?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('renders every operation of the reference at /docs, with nothing refused', async () => {
    const { dom, console: messages } = await render(`${baseUrl}/docs`, join(shots, 'docs.png'));
    // Swagger UI draws one block per operation, each with its method and path.
    const paths = new Set([...dom.matchAll(/class="opblock-summary-path" data-path="([^"]+)"/g)].map((m) => m[1]));
    for (const path of ['/v1/links', '/v1/links/{id}', '/v1/keys', '/v1/stats', '/{slug}', '/openapi.json']) expect(paths).toContain(path);
    expect([...dom.matchAll(/class="opblock-summary-method"/g)].length).toBeGreaterThan(30);
    expect(dom).toContain('Create a short link');
    expect(messages.filter((m) => REFUSED.test(m))).toEqual([]);
  }, 120_000);

  it('shows a browser the landing page at /, linking to /docs', async () => {
    const { dom, console: messages } = await render(`${baseUrl}/`, join(shots, 'landing.png'));
    expect(dom).toContain('<h1>hop</h1>');
    expect(dom).toContain('<a href="/docs">');
    expect(messages.filter((m) => REFUSED.test(m))).toEqual([]);
  }, 120_000);
});
