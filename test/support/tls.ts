/**
 * TLS for tests: a self-signed certificate for localhost and 127.0.0.1 made with openssl in a temporary directory,
 * and HTTPS requests that trust it (HTTP/1.1 through node:https, HTTP/2 through node:http2), reporting the
 * protocol version that answered. `opensslAvailable()` skips tests where openssl is not installed, with the
 * install command, except under CI=true, where that is a failure.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect, constants } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const OPENSSL_INSTALL_HINT = 'apt-get install -y openssl (Debian/Ubuntu), brew install openssl (macOS)';

export function opensslAvailable(): boolean {
  if (spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0) return true;
  if (process.env.CI === 'true') throw new Error(`openssl is required under CI=true: ${OPENSSL_INSTALL_HINT}`);
  console.warn(`skipping tests that need openssl: ${OPENSSL_INSTALL_HINT}`);
  return false;
}

export interface Certificate {
  dir: string;
  certFile: string;
  keyFile: string;
  /** The certificate's PEM text: the CA a client trusts (it is self-signed). */
  ca: string;
}

/** A self-signed P-256 certificate valid for a day, for `localhost` and `127.0.0.1`. */
export function selfSignedCertificate(): Certificate {
  const dir = mkdtempSync(join(tmpdir(), 'hop-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const run = spawnSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', keyFile, '-out', certFile, '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`openssl failed: ${run.stderr}`);
  return { dir, certFile, keyFile, ca: readFileSync(certFile, 'utf8') };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** `1.1` or `2.0`. */
  httpVersion: string;
}

export interface TlsRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** One HTTPS request over HTTP/1.1 on a fresh connection, trusting `ca`. */
export function https11(url: string, ca: string, init: TlsRequest = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, httpVersion: res.httpVersion }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.end(init.body);
  });
}

/** One HTTPS request over HTTP/2 (the connection fails when the server does not offer h2), trusting `ca`. */
export function https2(url: string, ca: string, init: TlsRequest = {}): Promise<Answer> {
  const { origin, pathname, search } = new URL(url);
  return new Promise((resolve, reject) => {
    const session = connect(origin, { ca });
    session.on('error', reject);
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: init.method ?? 'GET',
      [constants.HTTP2_HEADER_PATH]: `${pathname}${search}`,
      ...init.headers,
    });
    let headers: Record<string, string | string[] | undefined> = {};
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (headers = h as typeof headers));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers, body, httpVersion: '2.0' });
    });
    stream.on('error', (err) => {
      session.close();
      reject(err);
    });
    stream.end(init.body);
  });
}

/** A readiness probe for startProcess over HTTPS with this CA. */
export const tlsProbe = (ca: string) => async (url: string) => (await https11(url, ca)).status;
