// The Worker's size budget: wrangler's own dry-run build (what `npm run build:worker` and a deploy upload) stays
// within 120 KiB gzip. Measured in a test because a dependency update can break it silently.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, expect, it } from 'vitest';

const BUDGET_KIB = 120;
const outdir = mkdtempSync(join(tmpdir(), 'hop-worker-build-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

it(`builds the Worker within ${BUDGET_KIB} KiB gzip`, async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['node_modules/wrangler/bin/wrangler.js', 'deploy', '--dry-run', '--outdir', outdir, '--env', ''],
    { env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
  );
  const reported = /Total Upload: [\d.]+ KiB \/ gzip: ([\d.]+) KiB/.exec(stdout);
  expect(reported, stdout).not.toBeNull();
  expect(Number(reported![1])).toBeLessThanOrEqual(BUDGET_KIB);
  // Our own measure of the same file, so the budget does not rest on parsing wrangler's output alone.
  const gzipKiB = gzipSync(readFileSync(join(outdir, 'worker.js'))).length / 1024;
  expect(gzipKiB).toBeLessThanOrEqual(BUDGET_KIB);
  expect(Math.abs(gzipKiB - Number(reported![1]))).toBeLessThan(5);
}, 120_000);
