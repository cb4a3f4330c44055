/** Starting and stopping real hop processes for end-to-end tests: free ports, readiness, output capture. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Running {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Spawns `command` in its own process group (so npm's children stop with it) and waits for /readyz. */
export async function startProcess(
  command: string,
  args: string[],
  env: Record<string, string>,
  baseUrl: string,
  timeoutMs = 20_000,
): Promise<Running> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // the whole group is gone
    }
  };
  // The group, not just the leader: even when npm itself has exited, a server it left behind must not outlive the test.
  const stop = async () => {
    const running = child.exitCode === null && child.signalCode === null;
    signalGroup('SIGTERM');
    if (running) {
      const timer = setTimeout(() => signalGroup('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}:\n${out}`);
    try {
      const res = await fetch(`${baseUrl}/readyz`);
      if (res.status === 200) return { child, output: () => out, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`not ready within ${timeoutMs} ms:\n${out}`);
}
