/**
 * Headless Chromium for tests that look at hop's pages as a browser does: found on PATH (or HOP_CHROMIUM_BIN).
 * `chromiumAvailable()` skips such tests where it is not installed, with the install command, except under CI=true,
 * where that is a failure. Each run has no network beyond loopback: every other host name fails to resolve.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const CHROMIUM_INSTALL_HINT = 'apt-get install -y chromium (Debian/Ubuntu), or set HOP_CHROMIUM_BIN';

/** The Chromium executable, or undefined when none is installed. */
export function findChromium(env: Record<string, string | undefined> = process.env): string | undefined {
  const candidates = env.HOP_CHROMIUM_BIN ? [env.HOP_CHROMIUM_BIN] : ['chromium', 'chromium-browser', 'google-chrome'];
  return candidates.find((bin) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0);
}

export function chromiumAvailable(): boolean {
  if (findChromium()) return true;
  if (process.env.CI === 'true') throw new Error(`chromium is required under CI=true: ${CHROMIUM_INSTALL_HINT}`);
  console.warn(`skipping tests that need chromium: ${CHROMIUM_INSTALL_HINT}`);
  return false;
}

export interface Rendered {
  /** The DOM once the page's scripts have run (within the virtual time budget). */
  dom: string;
  /** The page's console as the browser logged it: messages, CSP violations and loads that failed. */
  console: string[];
}

/**
 * Loads `url` in headless Chromium and returns its DOM after its scripts ran, with `screenshot` (a PNG path) taken
 * of the same page when given. Hosts other than loopback do not resolve, so a page that needs a CDN shows it.
 */
export async function render(url: string, screenshot?: string): Promise<Rendered> {
  const bin = findChromium();
  if (!bin) throw new Error(`chromium is not installed: ${CHROMIUM_INSTALL_HINT}`);
  const profile = mkdtempSync(join(tmpdir(), 'hop-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    `--user-data-dir=${profile}`,
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
    // Console messages, CSP violations included, go to stderr as INFO:CONSOLE lines.
    '--enable-logging=stderr',
    '--log-level=0',
    '--window-size=1280,900',
    '--virtual-time-budget=15000',
  ];
  const run = (extra: string[]) =>
    promisify(execFile)(bin, [...args, ...extra, url], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  try {
    const { stdout, stderr } = await run(['--dump-dom']);
    if (screenshot) await run([`--screenshot=${screenshot}`]);
    return { dom: stdout, console: stderr.split('\n').filter((line) => line.includes(':CONSOLE')) };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
