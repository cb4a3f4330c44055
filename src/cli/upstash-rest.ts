/**
 * A local stand-in for Upstash's REST API in front of a real redis-server, so `new Redis({ url, token })` from
 * @upstash/redis runs unchanged in tests (Upstash's own one, SRH, ships only as a container image).
 *
 * Protocol, as @upstash/redis and SRH speak it: `POST /` with one command as a JSON array, `POST /pipeline` and
 * `POST /multi-exec` with an array of them; `Authorization: Bearer <token>` (401 otherwise). A result is
 * `{ result }`; a Redis error is `{ error }` (HTTP 400 for a single command, one entry of the 200 array in a
 * pipeline). With `Upstash-Encoding: base64` every string in a result, at any depth (stream replies are arrays of
 * arrays), is the base64 of its bytes; numbers and nulls stay as they are. While redis-server is unreachable
 * every request answers 503 `{ error }` at once instead of waiting. Blocking commands (XREADGROUP ... BLOCK,
 * BLPOP...) get a connection of their own so they never hold up the others. Binds 127.0.0.1 only. Used by the tests
 * and by `npm run stack` (src/cli/stack.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RespConnection, RespConnectionError, RespError, type RespReply } from './resp.ts';

export interface UpstashRestOptions {
  redisPort: number;
  /** The bearer token clients must send; a random one by default. */
  token?: string;
  port?: number;
}

export interface UpstashRest {
  url: string;
  token: string;
  port: number;
  /** Requests answered so far, by path, and how many of them were 503 (Redis unreachable). */
  stats(): { requests: Record<string, number>; unavailable: number };
  close(): Promise<void>;
}

const BLOCKING = new Set(['BLPOP', 'BRPOP', 'BLMOVE', 'BLMPOP', 'BRPOPLPUSH', 'BZPOPMIN', 'BZPOPMAX', 'BZMPOP', 'WAIT']);
const REFUSED = new Set(['SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'MONITOR', 'SYNC', 'PSYNC', 'QUIT', 'SELECT', 'MULTI', 'EXEC']);

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function isBlocking(command: string[]) {
  const name = command[0]!.toUpperCase();
  if (BLOCKING.has(name)) return true;
  return (name === 'XREAD' || name === 'XREADGROUP') && command.some((a) => a.toUpperCase() === 'BLOCK');
}

function parseCommand(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new HttpError(400, 'ERR a command is a non-empty JSON array');
  for (const part of value) {
    if (typeof part !== 'string' && typeof part !== 'number' && typeof part !== 'boolean') {
      throw new HttpError(400, 'ERR command arguments must be strings or numbers');
    }
  }
  const command = value.map((part) => String(part));
  if (REFUSED.has(command[0]!.toUpperCase())) throw new HttpError(400, `ERR ${command[0]} is not supported over REST`);
  return command;
}

/** Bulk strings arrive as bytes; base64 keeps them byte-exact, otherwise they are read as UTF-8. */
function encode(value: RespReply, base64: boolean): unknown {
  if (value instanceof Uint8Array) {
    return base64 ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') : new TextDecoder().decode(value);
  }
  if (typeof value === 'string') return base64 ? Buffer.from(value).toString('base64') : value;
  if (Array.isArray(value)) return value.map((v) => encode(v, base64));
  if (value instanceof RespError) return value.message;
  return value;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    req.on('data', (c: Uint8Array) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

type Entry = { result: RespReply } | { error: string };
const entry = (reply: RespReply): Entry => (reply instanceof RespError ? { error: reply.message } : { result: reply });

export async function startUpstashRest(options: UpstashRestOptions): Promise<UpstashRest> {
  const token = options.token ?? `tok_${crypto.randomUUID().replaceAll('-', '')}`;
  const counts = { requests: {} as Record<string, number>, unavailable: 0 };
  // One shared connection for ordinary commands, opened again on the next request after it is lost (so a dead
  // Redis costs each request one refused connect, never a wait); blocking commands borrow one of their own.
  let shared: Promise<RespConnection> | undefined;
  const idle: RespConnection[] = [];
  const opened = new Set<RespConnection>();

  async function open() {
    const conn = await RespConnection.connect(options.redisPort);
    opened.add(conn);
    return conn;
  }

  async function sharedConnection() {
    const current = shared && (await shared.catch(() => undefined));
    if (current?.open) return current;
    shared = open();
    shared.catch(() => (shared = undefined));
    return shared;
  }

  async function single(command: string[]): Promise<RespReply> {
    if (!isBlocking(command)) return (await sharedConnection()).send(command);
    let conn = idle.pop();
    while (conn && !conn.open) conn = idle.pop();
    conn ??= await open();
    try {
      return await conn.send(command);
    } finally {
      if (conn.open && !closed) idle.push(conn);
    }
  }

  /** Each command on its own, in order, one entry per command with its error if it has one (not atomic). */
  async function pipeline(commands: string[][]): Promise<Entry[]> {
    const out: Entry[] = [];
    for (const command of commands) {
      try {
        out.push({ result: await single(command) });
      } catch (err) {
        if (!(err instanceof RespError)) throw err;
        out.push({ error: err.message });
      }
    }
    return out;
  }

  /** MULTI, the commands and EXEC written in one go on one connection: nothing of another request runs between. */
  async function transaction(commands: string[][]): Promise<Entry[]> {
    const replies = await (await sharedConnection()).sendAll([['MULTI'], ...commands, ['EXEC']]);
    const exec = replies[replies.length - 1]!;
    if (exec instanceof RespError) {
      const queued = replies.slice(1, -1).find((r) => r instanceof RespError);
      throw new HttpError(400, queued instanceof RespError ? `${exec.message}: ${queued.message}` : exec.message);
    }
    if (!Array.isArray(exec)) throw new HttpError(400, 'EXECABORT Transaction discarded');
    return exec.map(entry);
  }

  let closed = false;
  const server = createServer((req, res) => void answer(req, res));

  async function answer(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    counts.requests[path] = (counts.requests[path] ?? 0) + 1;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method !== 'POST') throw new HttpError(405, 'only POST is supported');
      if (req.headers.authorization !== `Bearer ${token}`) {
        await readBody(req);
        return send(401, { error: 'Unauthorized' });
      }
      const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        throw new HttpError(400, 'ERR the body is not JSON');
      }
      if (path === '/') return send(200, { result: encode(await single(parseCommand(body)), base64) });
      if (path === '/pipeline' || path === '/multi-exec') {
        if (!Array.isArray(body) || body.length === 0) throw new HttpError(400, 'ERR expected a non-empty array of commands');
        const commands = body.map(parseCommand);
        const results = path === '/pipeline' ? await pipeline(commands) : await transaction(commands);
        return send(
          200,
          results.map((r) => ('error' in r ? r : { result: encode(r.result, base64) })),
        );
      }
      throw new HttpError(404, `no such endpoint: ${path}`);
    } catch (err) {
      if (err instanceof HttpError) return send(err.status, { error: err.message });
      if (err instanceof RespError) return send(400, { error: err.message });
      if (!(err instanceof RespConnectionError)) return send(500, { error: `internal error: ${String(err)}` });
      counts.unavailable += 1;
      return send(503, { error: `Unable to connect to the Redis server: ${err instanceof Error ? err.message : String(err)}` });
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    port,
    stats: () => ({ requests: { ...counts.requests }, unavailable: counts.unavailable }),
    async close() {
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      for (const conn of opened) conn.close();
    },
  };
}
