/**
 * Prometheus for tests: `promtool` (rule checks and unit tests; found by ./promtool.ts) and a real `prometheus`
 * server (Debian's package ships both). `prometheusAvailable()` skips tests where they are not installed, with the
 * install command, except under CI=true, where that is a failure. `startPrometheus()` runs a server on a free
 * loopback port with its own temporary configuration and storage, and queries it over its HTTP API.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './process.ts';
import { findPromtool } from './promtool.ts';

export const PROMETHEUS_INSTALL_HINT =
  'apt-get install -y prometheus (Debian/Ubuntu: the server and promtool), or set PROMTOOL and HOP_PROMETHEUS_BIN to their paths';
const PROMETHEUS = process.env.HOP_PROMETHEUS_BIN || 'prometheus';

/** True when promtool and prometheus are installed; false (with a warning) when not, or an error under CI=true. */
export function prometheusAvailable(): boolean {
  const missing = [
    findPromtool() ? undefined : 'promtool',
    spawnSync(PROMETHEUS, ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : 'prometheus',
  ].filter(Boolean);
  if (missing.length === 0) return true;
  if (process.env.CI === 'true') throw new Error(`${missing.join(' and ')} required under CI=true: ${PROMETHEUS_INSTALL_HINT}`);
  console.warn(`skipping tests that need ${missing.join(' and ')}: ${PROMETHEUS_INSTALL_HINT}`);
  return false;
}

/** Runs promtool with `args` (in `cwd`); its exit status and everything it printed. */
export function promtool(args: string[], cwd?: string): { status: number | null; output: string } {
  const r = spawnSync(findPromtool()!, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

// Servers still running when this process exits (a run cut short) are killed, so none outlives the tests.
const live = new Set<ChildProcess>();
process.once('exit', () => live.forEach((c) => c.kill('SIGKILL')));

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RunningPrometheus {
  url: string;
  /** An instant query (`/api/v1/query`); the vector it answers. */
  query(expr: string): Promise<PromSample[]>;
  /** Polls `expr` until `accept` takes its answer; the last answer is in the error when it never does. */
  waitFor(expr: string, accept: (v: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `prometheus` with `config` (a prometheus.yml: give rule_files as absolute paths), written to a temporary
 * directory with the storage, on 127.0.0.1:<free port>.
 */
export async function startPrometheus(config: string): Promise<RunningPrometheus> {
  const tmp = mkdtempSync(join(tmpdir(), 'hop-prometheus-'));
  const configFile = join(tmp, 'prometheus.yml');
  writeFileSync(configFile, config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    PROMETHEUS,
    [`--config.file=${configFile}`, `--storage.tsdb.path=${join(tmp, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => live.delete(child));
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killed = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killed);
    }
    cleanup();
  };
  const query = async (expr: string): Promise<PromSample[]> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: PromSample[] } };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
    return body.data.result;
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Ready when /-/ready answers 200 (the configuration and rules loaded, the TSDB open).
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      cleanup();
      throw new Error(`prometheus exited (${child.exitCode}):\n${out}`);
    }
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within 30 s:\n${out}`);
    }
    await sleep(100);
  }
  return {
    url,
    query,
    async waitFor(expr, accept, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      let last: PromSample[] = [];
      for (;;) {
        last = await query(expr);
        if (accept(last)) return last;
        if (Date.now() > until) throw new Error(`${expr} never matched within ${timeoutMs} ms; last answer ${JSON.stringify(last)}\n${out}`);
        await sleep(500);
      }
    },
    output: () => out,
    stop,
  };
}
