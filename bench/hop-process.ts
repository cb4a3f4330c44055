/**
 * hop as a benchmark starts it: `hop migrate`, then `hop serve` as `npm start` runs it (flags included, without npm
 * in front, rate limits off), on a free loopback port, ready once /readyz answers; stopped with SIGTERM (SIGKILL
 * after 15 s), and every child killed when the benchmark is interrupted. Shared by bench/writes.ts and
 * bench/steady.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort } from '../src/cli/sqld.ts';

/** A failure of the benchmark's own setup (not of hop under load): the benchmark exits non-zero with it. */
export class HarnessError extends Error {}

export interface RunningHop {
  child: ChildProcess;
  url: string;
  log: () => string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `extraEnv` is passed to every hop started, after hop's variables are cleared from the benchmark's own. */
export function hopProcesses(root: string, adminToken: string, extraEnv: Record<string, string> = {}) {
  const children = new Set<ChildProcess>();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of children) child.kill('SIGKILL');
      process.exit(130);
    });
  }

  function run(args: string[], env: Record<string, string>): ChildProcess {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('HOP_')) clean[k] = v;
    const child = spawn(process.execPath, args, { cwd: root, env: { ...clean, ...extraEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  }

  function output(child: ChildProcess): () => string {
    let text = '';
    const keep = (c: Buffer) => (text = (text + c.toString('utf8')).slice(-6000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return () => text;
  }

  async function startHop(dbUrl: string, env: Record<string, string> = {}): Promise<RunningHop> {
    const migrate = run(['bin/hop.js', 'migrate'], { HOP_DATABASE_URL: dbUrl });
    const migrateLog = output(migrate);
    const code = await new Promise((r) => migrate.once('exit', r));
    if (code !== 0) throw new HarnessError(`hop migrate failed:\n${migrateLog()}`);
    const port = await freePort();
    const child = run(['--max-semi-space-size=8', 'bin/hop.js', 'serve'], {
      PORT: String(port),
      HOST: '127.0.0.1',
      HOP_DATABASE_URL: dbUrl,
      HOP_ADMIN_TOKEN: adminToken,
      HOP_RATE_LIMIT: 'off',
      HOP_SHUTDOWN_DELAY_MS: '0',
      HOP_LOG_LEVEL: 'warn',
      ...env,
    });
    const log = output(child);
    const url = `http://127.0.0.1:${port}`;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && child.exitCode === null; await sleep(100)) {
      try {
        if ((await fetch(`${url}/readyz`)).ok) return { child, url, log };
      } catch {
        // not listening yet
      }
    }
    child.kill('SIGKILL');
    throw new HarnessError(`hop did not start on ${dbUrl}:\n${log()}`);
  }

  async function stopHop(child: ChildProcess) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    if ((await Promise.race([exited, sleep(15_000).then(() => 'late')])) === 'late') {
      child.kill('SIGKILL');
      await exited;
    }
  }

  /** VmHWM (the peak RSS over the process's life), in MB. */
  function peakMb(pid: number): number {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
  }

  return { startHop, stopHop, peakMb, HarnessError };
}
