/**
 * A real redis-server on loopback, for `npm run stack` and the tests: found on PATH (or HOP_REDIS_SERVER_BIN), on a
 * free port with its own temporary directory, stopped by PID. It can be crashed (SIGKILL) and restarted on the same
 * port, without persistence (the default: a crash loses everything) or with an append-only file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './sqld.ts';

export const REDIS_INSTALL_HINT =
  'apt-get install -y redis-server (Debian/Ubuntu), brew install redis (macOS), or set HOP_REDIS_SERVER_BIN';

/** The redis-server executable, or undefined when none is installed. */
export function findRedisServer(env: Record<string, string | undefined> = process.env): string | undefined {
  const bin = env.HOP_REDIS_SERVER_BIN || 'redis-server';
  return spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0 ? bin : undefined;
}

export interface RedisServerOptions {
  port?: number;
  /**
   * `none` (default): nothing on disk, a crash loses every key. `aof`: an append-only file fsynced on every
   * write (`appendfsync always`), so a restart after SIGKILL finds everything that was acknowledged.
   */
  persistence?: 'none' | 'aof';
  /** More redis-server arguments, e.g. ['--maxmemory', '10mb']. */
  args?: string[];
}

export interface RedisServer {
  host: '127.0.0.1';
  port: number;
  /** `redis://127.0.0.1:P` */
  url: string;
  /** The PID of the current redis-server process. */
  pid(): number;
  running(): boolean;
  /** Crashes it now (SIGKILL by default) and resolves when the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (after kill or stop) and waits until it answers PING. */
  restart(): Promise<void>;
  /** SIGTERM, SIGKILL after 5 s; removes its directory. */
  stop(): Promise<void>;
  /** The last lines it printed (for failure messages). */
  output(): string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Servers still running when this process exits (a run cut short) are killed, so none outlives the tests.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Resolves true when a RESP PING on host:port answers +PONG within the timeout. */
export function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (d: Uint8Array) => {
      reply += new TextDecoder().decode(d);
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

export async function startRedis(options: RedisServerOptions = {}, timeoutMs = 10_000): Promise<RedisServer> {
  const bin = findRedisServer();
  if (!bin) throw new Error(`redis-server is not installed: ${REDIS_INSTALL_HINT}`);
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'hop-redis-'));
  const persistence =
    options.persistence === 'aof' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const args = [
    '--bind', '127.0.0.1',
    '--port', String(port),
    '--dir', dir,
    '--save', '',
    ...persistence,
    '--protected-mode', 'yes',
    '--daemonize', 'no',
    ...(options.args ?? []),
  ];
  let child: ChildProcess;
  let exited: Promise<void>;
  let out = '';
  const running = () => child.exitCode === null && child.signalCode === null;

  async function launch() {
    child = spawn(bin!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const collect = (d: Uint8Array) => (out = (out + new TextDecoder().decode(d)).slice(-4000));
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const current = child;
    exited = new Promise<void>((resolve) => current.once('exit', () => (live.delete(current), resolve())));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!running()) throw new Error(`redis-server exited with ${child.exitCode ?? child.signalCode}:\n${out}`);
      if (await ping(port)) return;
      await sleep(25);
    }
    child.kill('SIGKILL');
    throw new Error(`redis-server did not answer PING within ${timeoutMs} ms:\n${out}`);
  }

  async function kill(signal: NodeJS.Signals = 'SIGKILL') {
    if (!running()) return;
    child.kill(signal);
    await exited;
  }

  await launch();
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => child.pid!,
    running,
    kill,
    async restart() {
      await kill();
      await launch();
    },
    async stop() {
      if (running()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
    output: () => out,
  };
}
