/**
 * A minimal RESP2 client for the Upstash REST proxy (upstash-rest.ts): one TCP connection, commands written as arrays of bulk strings, replies
 * read back in order and returned raw (bulk strings as bytes, simple strings as strings, integers as numbers, nil as
 * null, arrays as arrays, error replies inside arrays as RespError). No reconnects, no offline queue, no reply
 * rewriting: the Upstash REST stand-in needs Redis's replies exactly as sent, and a closed connection as an error
 * at once. (ioredis was tried first: it rewrites some replies, e.g. HGETALL into an object, even through `call`.)
 */
import { connect, type Socket } from 'node:net';

export type RespReply = Uint8Array | string | number | null | RespError | RespReply[];

/** An error reply from Redis (`-ERR ...`, `-WRONGTYPE ...`): the command ran and was refused. */
export class RespError extends Error {
  override name = 'RespError';
}

/** The connection is gone or never came up: nothing is known about the command. */
export class RespConnectionError extends Error {
  override name = 'RespConnectionError';
}

const CRLF = '\r\n';
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const INCOMPLETE = Symbol('incomplete');

/** Parses one reply at `at`; INCOMPLETE when the buffer does not hold all of it yet. */
function parse(buf: Buffer, at: number): { value: RespReply; end: number } | typeof INCOMPLETE {
  if (at >= buf.length) return INCOMPLETE;
  const lineEnd = buf.indexOf(CRLF, at);
  if (lineEnd === -1) return INCOMPLETE;
  const type = String.fromCharCode(buf[at]!);
  const line = buf.toString('utf8', at + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RespError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buf.length < next + length + 2) return INCOMPLETE;
      return { value: new Uint8Array(buf.subarray(next, next + length)), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespReply[] = [];
      let pos = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buf, pos);
        if (item === INCOMPLETE) return INCOMPLETE;
        items.push(item.value);
        pos = item.end;
      }
      return { value: items, end: pos };
    }
    default:
      throw new RespConnectionError(`protocol error: unexpected reply type ${JSON.stringify(type)}`);
  }
}

function encodeCommand(args: ReadonlyArray<string | Uint8Array>): Buffer {
  const parts: Uint8Array[] = [encoder.encode(`*${args.length}${CRLF}`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? encoder.encode(arg) : arg;
    parts.push(encoder.encode(`$${bytes.length}${CRLF}`), bytes, encoder.encode(CRLF));
  }
  return Buffer.concat(parts);
}

export class RespConnection {
  #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: Array<{ resolve: (r: RespReply) => void; reject: (e: Error) => void }> = [];
  #open = true;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => {}); // followed by 'close'
    socket.on('close', () => this.#fail(new RespConnectionError('connection to Redis closed')));
  }

  static connect(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RespConnectionError(`could not connect to Redis at ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new RespConnectionError(`could not connect to Redis at ${host}:${port}: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RespConnection(socket));
      });
    });
  }

  get open() {
    return this.#open;
  }

  /** Sends one command; an error reply rejects with RespError, a lost connection with RespConnectionError. */
  async send(args: ReadonlyArray<string | Uint8Array>): Promise<RespReply> {
    const [reply] = await this.sendAll([args]);
    if (reply instanceof RespError) throw reply;
    return reply!;
  }

  /**
   * Writes every command in one write (nothing of another caller's can land in between, which MULTI/EXEC needs)
   * and resolves with one reply per command, error replies included.
   */
  sendAll(commands: ReadonlyArray<ReadonlyArray<string | Uint8Array>>): Promise<RespReply[]> {
    if (!this.#open) return Promise.reject(new RespConnectionError('connection to Redis closed'));
    const replies = commands.map(
      () => new Promise<RespReply>((resolve, reject) => this.#waiting.push({ resolve, reject })),
    );
    this.#socket.write(Buffer.concat(commands.map(encodeCommand)));
    return Promise.all(replies);
  }

  close() {
    this.#socket.destroy();
    this.#fail(new RespConnectionError('connection to Redis closed'));
  }

  #onData(chunk: Buffer) {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    let at = 0;
    try {
      for (;;) {
        const parsed = parse(this.#buffer, at);
        if (parsed === INCOMPLETE) break;
        at = parsed.end;
        this.#waiting.shift()?.resolve(parsed.value);
      }
    } catch (err) {
      this.#socket.destroy();
      this.#fail(err as Error);
      return;
    }
    this.#buffer = this.#buffer.subarray(at);
  }

  #fail(err: Error) {
    this.#open = false;
    for (const w of this.#waiting.splice(0)) w.reject(err);
  }
}

/** A reply as text (bulk strings decoded as UTF-8), for tests that look at Redis directly. */
export function replyText(reply: RespReply): unknown {
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  if (Array.isArray(reply)) return reply.map(replyText);
  return reply;
}
