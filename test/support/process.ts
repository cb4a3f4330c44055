/** Starting and stopping real hop processes for end-to-end tests: free ports, readiness, output capture. */
import { spawn, type ChildProcess } from 'node:child_process';

export { freePort } from '../../src/cli/sqld.ts';

export interface Running {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True while any process of the group is left (zombies are reaped by init within moments). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

// Groups still running when this process exits (a test run cut short) are killed, so no server outlives it.
const groups = new Set<number>();
process.once('exit', () => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** The status of GET `url` (the readiness probe); a server over TLS with its own CA passes its own. */
export type Probe = (url: string) => Promise<number>;
const fetchStatus: Probe = async (url) => (await fetch(url, { signal: AbortSignal.timeout(5000) })).status;

/** Spawns `command` in its own process group (so npm's children stop with it) and waits for /readyz. */
export async function startProcess(
  command: string,
  args: string[],
  env: Record<string, string>,
  baseUrl: string,
  timeoutMs = 20_000,
  probe: Probe = fetchStatus,
): Promise<Running> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  const pgid = child.pid!;
  groups.add(pgid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pgid, signal);
    } catch {
      // the whole group is gone
    }
  };
  const leaderRunning = () => child.exitCode === null && child.signalCode === null;
  // The group, not just the leader: even when npm itself has exited, a server it left behind must not outlive the test.
  // The leader may exit before its children (wrangler's node exits before workerd), so the whole group is awaited.
  const stop = async () => {
    signalGroup('SIGTERM');
    const deadline = Date.now() + 5000;
    while ((leaderRunning() || groupAlive(pgid)) && Date.now() < deadline) await sleep(25);
    if (leaderRunning() || groupAlive(pgid)) {
      signalGroup('SIGKILL');
      if (leaderRunning()) await exited;
      while (groupAlive(pgid) && Date.now() < deadline + 5000) await sleep(25);
    }
    groups.delete(pgid);
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!leaderRunning()) {
      await stop();
      throw new Error(`process exited with ${child.exitCode ?? child.signalCode}:\n${out}`);
    }
    try {
      if ((await probe(`${baseUrl}/readyz`)) === 200) return { child, output: () => out, stop };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`not ready within ${timeoutMs} ms:\n${out}`);
}
