// HTTPS served by hop itself, on real Node and Bun processes: HOP_TLS_CERT/HOP_TLS_KEY with a self-signed
// certificate made here, HTTP/1.1 and HTTP/2 (ALPN) with the app unchanged, links and the OpenAPI servers on
// https, Strict-Transport-Security on API answers over TLS only (directly, or per X-Forwarded-Proto from a
// configured proxy), and bad TLS settings stopping the start with a message, without a stack.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { https11, https2, opensslAvailable, selfSignedCertificate, tlsProbe, type Certificate } from '../support/tls.ts';
import { HSTS } from '../../src/http/middleware/transport-security.ts';

const ADMIN = 't'.repeat(40);
const BUN = 'node_modules/.bin/bun';
const runtimes: { name: string; command: string; args: string[]; env: Record<string, string> }[] = [
  { name: 'Node', command: process.execPath, args: ['src/runtimes/node.ts'], env: { HOP_HEADERS_TIMEOUT_MS: '1000' } },
  { name: 'Bun', command: BUN, args: ['src/runtimes/bun.ts'], env: {} },
];
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'hop-tls-db-'));
  dirs.push(dir);
  return dir;
}

const baseEnv = (port: number) => ({
  PORT: String(port),
  HOP_DATABASE_URL: `file:${join(tempDir(), 'hop.db')}`,
  HOP_ADMIN_TOKEN: ADMIN,
  HOP_SHUTDOWN_DELAY_MS: '0',
  HOP_LOG_LEVEL: 'info',
});

describe.skipIf(!opensslAvailable())('HTTPS served by hop', () => {
  let cert: Certificate;
  beforeAll(() => {
    cert = selfSignedCertificate();
    dirs.push(cert.dir);
  });

  describe.each(runtimes)('on $name', ({ name, command, args, env }) => {
    let hop: Running;
    let origin: string;
    let key: string;
    beforeAll(async () => {
      const port = await freePort();
      origin = `https://127.0.0.1:${port}`;
      hop = await startProcess(command, args, { ...baseEnv(port), ...env, HOP_TLS_CERT: cert.certFile, HOP_TLS_KEY: cert.keyFile }, origin, 30_000, tlsProbe(cert.ca));
      key = /export HOP_KEY=(\S+)/.exec(hop.output())![1]!;
    }, 40_000);
    afterAll(() => hop?.stop());

    it('answers over HTTP/1.1 and HTTP/2, with Strict-Transport-Security on API answers', async () => {
      const h1 = await https11(`${origin}/v1/workspace`, cert.ca, { headers: { authorization: `Bearer ${key}` } });
      expect(h1).toMatchObject({ status: 200, httpVersion: '1.1' });
      expect(h1.headers['strict-transport-security']).toBe(HSTS);
      const h2 = await https2(`${origin}/v1/workspace`, cert.ca, { headers: { authorization: `Bearer ${key}` } });
      expect(h2).toMatchObject({ status: 200, httpVersion: '2.0' });
      expect(JSON.parse(h2.body)).toEqual(JSON.parse(h1.body));
      expect(h2.headers['strict-transport-security']).toBe(HSTS);
      // A refusal is an API answer too.
      const refused = await https2(`${origin}/v1/workspace`, cert.ca);
      expect(refused.status).toBe(401);
      expect(refused.headers['strict-transport-security']).toBe(HSTS);
    });

    it('takes a request body over HTTP/2 and redirects over it, its links on https by default', async () => {
      const created = await https2(`${origin}/v1/links`, cert.ca, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'https://example.com/tls', slug: 'over-h2' }),
      });
      expect(created.status).toBe(201);
      expect(JSON.parse(created.body).shortUrl).toMatch(/^https:\/\/localhost:\d+\/over-h2$/);
      const redirect = await https2(`${origin}/over-h2`, cert.ca);
      expect(redirect.status).toBe(302);
      expect(redirect.headers.location).toBe('https://example.com/tls');
      // Redirects carry no security headers (src/app.ts): a short link's host may be a customer's domain.
      expect(redirect.headers['strict-transport-security']).toBeUndefined();
      const document = JSON.parse((await https11(`${origin}/openapi.json`, cert.ca)).body) as { servers: { url: string }[] };
      expect(document.servers[0]!.url).toMatch(/^https:\/\/localhost:\d+$/);
      expect(hop.output()).toMatch(/"msg":"listening","url":"https:\/\/127\.0\.0\.1:/);
    });

    // Node only: Bun's bound on an unfinished head is its own (hostile-clients.test.ts).
    if (name === 'Node') it('closes a slow head and a stalled handshake within HOP_HEADERS_TIMEOUT_MS (plus its 1 s check)', async () => {
      const port = Number(new URL(origin).port);
      const t0 = Date.now();
      const slowHead = new Promise<{ ms: number; received: string }>((resolve) => {
        const socket = tlsConnect({ port, host: '127.0.0.1', ca: cert.ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () =>
          socket.write('GET /livez HTTP/1.1\r\nHost: localhost\r\n'),
        );
        let received = '';
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => (received += d));
        socket.on('error', () => {});
        socket.on('close', () => resolve({ ms: Date.now() - t0, received }));
      });
      const noHandshake = new Promise<number>((resolve) => {
        const socket = netConnect(port, '127.0.0.1');
        socket.on('error', () => {});
        socket.on('close', () => resolve(Date.now() - t0));
      });
      const head = await slowHead;
      expect(head.received).toMatch(/^HTTP\/1\.1 408 /);
      expect(head.ms).toBeLessThan(3000);
      expect(await noHandshake).toBeLessThan(3000);
    });

    it('drains at SIGTERM with an HTTP/2 session open, at once', async () => {
      const session = http2Connect(origin, { ca: cert.ca });
      await new Promise<void>((resolve, reject) => {
        const stream = session.request({ ':path': '/livez' });
        stream.on('error', reject);
        stream.resume();
        stream.on('end', () => resolve());
        stream.end();
      });
      session.on('error', () => {});
      const t0 = Date.now();
      await hop.stop();
      expect(Date.now() - t0).toBeLessThan(4000);
      expect(hop.child.exitCode).toBe(0);
      session.destroy();
    });
  });

  it('sends Strict-Transport-Security over plain HTTP only when a configured proxy says the client used https', async () => {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const proxied = await startProcess(process.execPath, ['src/runtimes/node.ts'], { ...baseEnv(port), HOP_CLIENT_IP_HEADER: 'x-forwarded-for' }, origin);
    try {
      const plain = await fetch(`${origin}/v1/workspace`);
      expect(plain.status).toBe(401);
      expect(plain.headers.get('strict-transport-security')).toBeNull();
      const viaTls = await fetch(`${origin}/v1/workspace`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' } });
      expect(viaTls.headers.get('strict-transport-security')).toBe(HSTS);
      const viaHttp = await fetch(`${origin}/v1/workspace`, { headers: { 'x-forwarded-proto': 'http' } });
      expect(viaHttp.headers.get('strict-transport-security')).toBeNull();
    } finally {
      await proxied.stop();
    }
    // Without a proxy configured, the same header from a client is not believed.
    const direct = await startProcess(process.execPath, ['src/runtimes/node.ts'], baseEnv(port), origin);
    try {
      const claimed = await fetch(`${origin}/v1/workspace`, { headers: { 'x-forwarded-proto': 'https' } });
      expect(claimed.status).toBe(401);
      expect(claimed.headers.get('strict-transport-security')).toBeNull();
    } finally {
      await direct.stop();
    }
  }, 60_000);

  describe.each(runtimes)('bad TLS settings on $name', ({ command, args }) => {
    let port: number;
    beforeAll(async () => void (port = await freePort()));
    const start = (env: Record<string, string>) => {
      const run = spawnSync(command, args, { env: { ...process.env, ...baseEnv(port), ...env }, encoding: 'utf8', timeout: 30_000 });
      return { status: run.status, out: `${run.stdout}${run.stderr}` };
    };

    it('needs the certificate and the key together', () => {
      const { status, out } = start({ HOP_TLS_CERT: cert.certFile });
      expect(status).toBe(1);
      expect(out).toContain('HOP_TLS_KEY: missing (HOP_TLS_CERT and HOP_TLS_KEY go together)');
      expect(out).not.toMatch(/^\s+at /m);
    }, 30_000);

    it('names a file it cannot read, a file that is no certificate or key, and a key of another certificate, before starting anything', () => {
      const other = selfSignedCertificate();
      dirs.push(other.dir);
      const garbage = join(cert.dir, 'garbage.pem');
      writeFileSync(garbage, 'not a certificate\n');
      const cases: [Record<string, string>, string][] = [
        [{ HOP_TLS_CERT: join(cert.dir, 'nope.pem'), HOP_TLS_KEY: cert.keyFile }, `HOP_TLS_CERT: cannot read ${join(cert.dir, 'nope.pem')} (ENOENT).`],
        [{ HOP_TLS_CERT: cert.certFile, HOP_TLS_KEY: cert.dir }, `HOP_TLS_KEY: cannot read ${cert.dir} (EISDIR).`],
        [{ HOP_TLS_CERT: garbage, HOP_TLS_KEY: cert.keyFile }, `HOP_TLS_CERT: ${garbage} holds no PEM certificate.`],
        [{ HOP_TLS_CERT: cert.certFile, HOP_TLS_KEY: cert.certFile }, `HOP_TLS_KEY: ${cert.certFile} holds no PEM private key.`],
        [{ HOP_TLS_CERT: cert.certFile, HOP_TLS_KEY: other.keyFile }, `HOP_TLS_KEY: ${other.keyFile} is not the key of the certificate in HOP_TLS_CERT.`],
      ];
      for (const [env, message] of cases) {
        const { status, out } = start(env);
        expect(status).toBe(1);
        expect(out.trim()).toBe(message);
      }
    }, 90_000);
  });
});
