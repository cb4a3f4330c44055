/**
 * Prometheus' promtool (Debian's `prometheus` package) for tests that check real /metrics output. `promtoolAvailable()`
 * skips such tests where it is missing, with the install command, except under CI=true, where that is a failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PROMTOOL_INSTALL_HINT = 'apt-get install prometheus (it brings promtool), or set PROMTOOL to its path';

export function findPromtool(env: Record<string, string | undefined> = process.env): string | undefined {
  const candidates = [env.PROMTOOL, '/usr/bin/promtool', '/usr/local/bin/promtool'].filter((p): p is string => !!p);
  return candidates.find((p) => existsSync(p));
}

export function promtoolAvailable(): boolean {
  if (findPromtool()) return true;
  if (process.env.CI === 'true') throw new Error(`promtool is required under CI=true: ${PROMTOOL_INSTALL_HINT}`);
  console.warn(`skipping tests that need promtool: ${PROMTOOL_INSTALL_HINT}`);
  return false;
}

/** `promtool check metrics` on `text`: its exit status and what it printed (lint problems, parse errors). */
export function checkMetrics(text: string): { status: number | null; output: string } {
  const run = spawnSync(findPromtool()!, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}
