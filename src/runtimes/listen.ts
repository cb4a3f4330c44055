/**
 * How the Node and Bun servers listen, apart from the app they serve: TLS from HOP_TLS_CERT/HOP_TLS_KEY (HTTP/2
 * with HTTP/1.1 fallback on Node), the timeouts that close slow or idle clients, the connection caps (in total and
 * per client address) with rate-limited logging of what they refuse, and `Connection: close` on answers sent
 * before their request's body was read.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import { loadServerConfig, type ServerConfig } from '../config.ts';
import { addressKey } from '../http/client-ip.ts';
import type { Logger } from '../platform/logger.ts';
import { StartError } from './server.ts';

export type ListenSettings = ServerConfig['listen'];
type Listener = (incoming: IncomingMessage | Http2ServerRequest, outgoing: ServerResponse | Http2ServerResponse) => unknown;

/** How a server listens: the settings, and the certificate and key (PEM text) when it serves TLS. */
export type Listen = ListenSettings & { pem?: { cert: string; key: string } | undefined };

/**
 * The listen settings of `env`, with the certificate and key read and checked: called before anything else starts
 * (the database, the one-time admin key), so that an unreadable file, a file that is not PEM, or a key that does not
 * belong to the certificate stops the start at once, naming the variable, without a stack.
 */
export function loadListen(env: Record<string, string | undefined>): Listen {
  const settings = loadServerConfig(env).listen;
  return settings.tls ? { ...settings, pem: readTls(settings.tls) } : settings;
}

function readTls(tls: NonNullable<ListenSettings['tls']>): { cert: string; key: string } {
  const read = (variable: string, file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new StartError(`${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
    }
  };
  const cert = read('HOP_TLS_CERT', tls.certFile);
  const key = read('HOP_TLS_KEY', tls.keyFile);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    throw new StartError(`HOP_TLS_CERT: ${tls.certFile} holds no PEM certificate.`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new StartError(`HOP_TLS_KEY: ${tls.keyFile} holds no PEM private key.`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new StartError(`HOP_TLS_KEY: ${tls.keyFile} is not the key of the certificate in HOP_TLS_CERT.`);
  }
  return { cert, key };
}

/** What the TLS stack still refuses in a certificate and key that parsed, as an operator's error. */
export function tlsStartError(err: unknown): StartError {
  const reason = err instanceof Error ? err.message : String(err);
  return new StartError(`HOP_TLS_CERT/HOP_TLS_KEY: not a usable certificate and key (${reason}).`);
}

const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * Logs refused connections at most once per interval: the first at once, the rest of a flood as one summary per
 * interval (a line per refused socket would be the next flood), with counts per reason and a few addresses.
 */
export function refusalLog(logger: Logger, intervalMs = REFUSAL_LOG_INTERVAL_MS) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let counts: Record<string, number> = {};
  let addresses = new Set<string>();
  const flush = () => {
    timer = undefined;
    if (addresses.size === 0 && Object.keys(counts).length === 0) return;
    logger.log('warn', 'connections refused', { refused: counts, addresses: [...addresses], intervalMs });
    counts = {};
    addresses = new Set();
    timer = setTimeout(flush, intervalMs);
    timer.unref();
  };
  return (reason: string, address: string | undefined) => {
    counts[reason] = (counts[reason] ?? 0) + 1;
    if (address && addresses.size < 5) addresses.add(address);
    if (!timer) flush();
  };
}

/** Caps the open connections of each client address (its addressKey: an IPv6 client by its /64). */
function capPerAddress(server: Server | Http2SecureServer, cap: number, refuse: ReturnType<typeof refusalLog>) {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const key = (socket.remoteAddress && addressKey(socket.remoteAddress)) || 'unknown';
    const count = (open.get(key) ?? 0) + 1;
    if (count > cap) {
      refuse('per address', key);
      socket.destroy();
      return;
    }
    open.set(key, count);
    socket.once('close', () => {
      const left = open.get(key)! - 1;
      if (left === 0) open.delete(key);
      else open.set(key, left);
    });
  });
}

// How long a connection closed under an unread request body keeps reading (and discarding) what the client still
// sends: closing at once would reset it, and a client still writing its body would see the reset, not the answer.
const LINGER_MS = 2000;

/** Half-closes `socket` (the answer is out), discards what still arrives, and closes it when the client does or after LINGER_MS. */
function lingeringClose(socket: Socket) {
  socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
}

/**
 * An HTTP/1.1 answer written while its request's body is still arriving (a 413 on a chunked body, a 401 before the
 * body was read) says `Connection: close` and closes the connection once sent: the unread rest of that body would
 * otherwise be taken for the next request, or the connection dropped under the client's next request on it.
 */
function closeEarlyAnswers(listener: Listener): Listener {
  return (incoming, outgoing) => {
    // A GET or HEAD body is never read (node:http discards it): the redirect's requests are not wrapped.
    const method = incoming.method;
    if (method !== 'GET' && method !== 'HEAD' && outgoing instanceof ServerResponse && !(incoming as IncomingMessage).complete) {
      const writeHead = outgoing.writeHead;
      outgoing.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
        const socket = this.socket;
        if (!(incoming as IncomingMessage).complete && socket) {
          this.shouldKeepAlive = false;
          // node:http closes a connection after its last answer with destroySoon(), which resets it under unread bytes.
          socket.destroySoon = () => lingeringClose(socket);
        }
        return writeHead.apply(this, args);
      } as ServerResponse['writeHead'];
    }
    return listener(incoming, outgoing);
  };
}

/**
 * The Node server of `listener`: HTTP/2 over TLS with HTTP/1.1 for clients without it when `tls` is given, else
 * HTTP/1.1; with the configured timeouts and connection caps.
 */
export function createNodeServer(listener: Listener, settings: Listen, logger: Logger): Server | Http2SecureServer {
  const handler = closeEarlyAnswers(listener);
  // How often Node checks the head and request deadlines (its default, 30 s, would stretch them by that much).
  const checkEveryMs = Math.min(1000, settings.headersTimeoutMs);
  let server: Server | Http2SecureServer;
  if (settings.pem) {
    const { cert, key } = settings.pem;
    try {
      server = createSecureServer(
        { cert, key, allowHTTP1: true, handshakeTimeout: settings.headersTimeoutMs },
        handler as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
      );
    } catch (err) {
      throw tlsStartError(err);
    }
    // HTTP/1.1 connections of an HTTP/2 server are served by node:http's connection handling, which reads these.
    Object.assign(server, {
      headersTimeout: settings.headersTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      keepAliveTimeout: settings.keepAliveTimeoutMs,
      connectionsCheckingInterval: checkEveryMs,
    });
    // An HTTP/2 server has no closeAllConnections(), which the drain calls past its deadline: this one is its own.
    const sockets = new Set<Socket>();
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    Object.assign(server, { closeAllConnections: () => sockets.forEach((socket) => socket.destroy()) });
  } else {
    server = createServer(
      {
        headersTimeout: settings.headersTimeoutMs,
        requestTimeout: settings.requestTimeoutMs,
        keepAliveTimeout: settings.keepAliveTimeoutMs,
        connectionsCheckingInterval: checkEveryMs,
      },
      handler,
    );
  }
  server.setTimeout(settings.idleTimeoutMs);
  const refuse = refusalLog(logger);
  server.maxConnections = settings.maxConnections;
  server.on('drop', (data?: { remoteAddress?: string }) => refuse('in total', data?.remoteAddress));
  if (settings.maxConnectionsPerAddress > 0) capPerAddress(server, settings.maxConnectionsPerAddress, refuse);
  // A TLS handshake that fails (a scanner, a client speaking plain HTTP) is the client's problem, not the server's.
  server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
  return server;
}

/**
 * Bun.serve's part of the settings: TLS with HTTP/2 offered by ALPN (Bun's `http2`, marked experimental), and its
 * one inactivity timeout (whole seconds, at most 255), which is what bounds a slow head there, so it takes the
 * shorter of the head and idle timeouts. Bun has no total or per-address connection cap and no separate request
 * or keep-alive timeout (docs/architecture.md).
 */
export function bunServeOptions(settings: Listen) {
  const idleTimeout = Math.min(255, Math.ceil(Math.min(settings.headersTimeoutMs, settings.idleTimeoutMs) / 1000));
  return { idleTimeout, ...(settings.pem ? { tls: settings.pem, http2: true } : {}) };
}
