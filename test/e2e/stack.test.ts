// `npm run stack` end to end, over HTTPS through Caddy: the README's walkthrough (a link created through the API pool,
// followed through the redirect pool, its click stored by the consumer and counted in the statistics), /metrics kept
// off the public side, per-address limits that see the real client address through the gateway, a redirect process
// killed under load without a failed request, and SIGTERM stopping every process it started.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingForStack } from '../../src/cli/stack.ts';

function stackAvailable(): boolean {
  const missing = missingForStack();
  if (!missing.length) return true;
  if (process.env.CI === 'true') throw new Error(`npm run stack is required under CI=true; install:\n  ${missing.join('\n  ')}`);
  console.warn(`skipping the stack tests; install:\n  ${missing.join('\n  ')}`);
  return false;
}

const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  child: ChildProcess;
  output: () => string;
  url: string;
  port: number;
  ca: string;
  key: string;
  pids: Record<string, number>;
  urls: Record<string, string>;
}

/** Starts `npm run stack` and reads what it printed: the URL, the CA file, the admin key and each process. */
async function startStack(env: Record<string, string>): Promise<Running> {
  const child = spawn('npm', ['run', '-s', 'stack'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr!.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  const deadline = Date.now() + 60_000;
  while (!out.includes('Ctrl-C stops everything')) {
    if (child.exitCode !== null) throw new Error(`npm run stack exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`npm run stack did not start:\n${out}`);
    await sleep(100);
  }
  const pick = (re: RegExp) => re.exec(out)?.[1] ?? '';
  const url = pick(/export HOP_URL=(\S+)/);
  const pids: Record<string, number> = {};
  const urls: Record<string, string> = {};
  for (const m of out.matchAll(/^ {4}(\S+)\s+pid (\d+)\s*(\S*)$/gm)) {
    pids[m[1]!] = Number(m[2]);
    if (m[3]) urls[m[1]!] = m[3];
  }
  return {
    child,
    output: () => out,
    url,
    port: Number(new URL(url).port),
    ca: pick(/export HOP_CA=(\S+)/),
    key: pick(/export HOP_KEY=(\S+)/),
    pids,
    urls,
  };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!stackAvailable())('npm run stack: every role behind Caddy, over HTTPS', { timeout: 120_000 }, () => {
  let stack: Running;
  let ca: Buffer;

  /** A request through the gateway from `localAddress` (any 127.0.0.0/8 address is this machine). */
  const send = (path: string, options: { method?: string; localAddress?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: stack.port,
          servername: 'localhost',
          path,
          method: options.method ?? 'GET',
          ca,
          localAddress: options.localAddress,
          agent: options.agent,
          headers: { host: `localhost:${stack.port}`, 'user-agent': BROWSER, ...options.headers },
          timeout: 10_000,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(options.body);
    });
  const api = (path: string, method = 'GET', json?: unknown) =>
    send(path, {
      method,
      headers: { authorization: `Bearer ${stack.key}`, ...(json ? { 'content-type': 'application/json' } : {}) },
      body: json ? JSON.stringify(json) : undefined,
    });

  beforeAll(async () => {
    stack = await startStack({
      // A low unknown-slug quota to see the per-address limit; redirects themselves may be many (the load test).
      HOP_RATE_LIMIT_NOT_FOUND: '5/60s',
      HOP_RATE_LIMIT_REDIRECT: '1000000/60s',
      // Caddy's active health checker logs its failures at INFO: the kill test reads when it noticed.
      HOP_GATEWAY_LOG_LEVEL: 'INFO',
    });
    ca = readFileSync(stack.ca);
  }, 90_000);

  afterAll(async () => {
    if (stack?.child.exitCode === null) {
      stack.child.kill('SIGKILL');
      for (const pid of Object.values(stack.pids)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('prints the HTTPS URL, the admin key once, the CA file and every process', () => {
    expect(stack.url).toMatch(/^https:\/\/localhost:\d+$/);
    expect(stack.key).toMatch(/^hop_[0-9A-Za-z]{43}$/);
    expect(stack.ca).toMatch(/pki\/authorities\/local\/root\.crt$/);
    expect(Object.keys(stack.pids).sort()).toEqual(['api', 'consumer', 'gateway', 'redirect-1', 'redirect-2']);
    expect(stack.output().split(stack.key).length - 1).toBe(1);
  });

  it("runs the README's walkthrough with curl --cacert: API pool, redirect pool, the consumer's click in the stats", async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /<!-- stack-walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- stack-walkthrough:end -->/.exec(readme);
    expect(block).not.toBeNull();
    const script = block![1]!
      .replace(/^export HOP_KEY=.*$/m, `export HOP_KEY=${stack.key}`)
      .replace(/^export HOP_URL=.*$/m, `export HOP_URL=${stack.url}`)
      .replace(/^export HOP_CA=.*$/m, `export HOP_CA=${stack.ca}`);
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { timeout: 30_000 });
    expect(stdout).toMatch(new RegExp(`"slug":"stack".*"shortUrl":"${stack.url.replaceAll('.', '\\.')}/stack"`));
    expect(stdout).toMatch(/HTTP\/2 302[\s\S]*?location: https:\/\/example\.com\/stack/i);
    expect(stdout).toMatch(/"totals":\{"humans":1,"bots":0\}/);
    expect(stdout).toMatch(/"browser":\[\{"value":"Firefox","humans":1/);
    expect(stdout.trimEnd()).toMatch(/"status":404,"detail":"Nothing at GET \/metrics\."\}$/);
  });

  it('keeps /metrics off the public side; each process serves it on its own address', async () => {
    for (const path of ['/metrics', '/metrics/', '/metrics?x=1']) {
      const res = await send(path);
      expect(res.status, path).toBe(404);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(res.body).not.toContain('hop_');
    }
    for (const name of ['api', 'redirect-1', 'redirect-2']) {
      const res = await fetch(`${stack.urls[name]}/metrics`);
      expect(res.status, name).toBe(200);
      expect(await res.text()).toContain('# TYPE');
    }
  });

  it('routes by path to the roles, each of which answers the other role\'s paths 404', async () => {
    expect((await send('/openapi.json')).status).toBe(200);
    expect((await send('/docs')).status).toBe(200);
    expect((await send('/', { headers: { accept: 'text/html' } })).body).toContain('<h1>hop</h1>');
    const onApi = await fetch(`${stack.urls.api}/stack`, { redirect: 'manual' });
    expect(onApi.status).toBe(404);
    expect(await onApi.json()).toMatchObject({ detail: expect.stringContaining('HOP_ROLE=api') });
    const onRedirect = await fetch(`${stack.urls['redirect-1']}/v1/links`, { headers: { authorization: `Bearer ${stack.key}` } });
    expect(onRedirect.status).toBe(404);
    expect(await onRedirect.json()).toMatchObject({ detail: expect.stringContaining('HOP_ROLE=redirect') });
  });

  it('refuses a body over the limit', async () => {
    const body = JSON.stringify({ url: 'https://example.com/', title: 'x'.repeat(2_000_000) });
    // Declared or chunked, it is refused as problem+json: by hop (413, before reading it) or by the gateway at its
    // own limit (1 MB). Caddy 2.6 answers 413 or, when the upstream has already refused and closed while Caddy was
    // still forwarding, 502. Either way nothing is stored, and the API pool stays in service for everyone else (no
    // passive health check that a client's body could trip).
    const before = JSON.parse((await api('/v1/links')).body).data.length;
    for (const framing of ['declared', 'chunked', 'declared', 'chunked']) {
      const res = await send('/v1/links', {
        method: 'POST',
        headers: {
          authorization: `Bearer ${stack.key}`,
          'content-type': 'application/json',
          ...(framing === 'chunked' ? { 'transfer-encoding': 'chunked' } : {}),
        },
        body,
      });
      expect([413, 502], framing).toContain(res.status);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(res.body)).toMatchObject({ status: res.status });
      expect((await api('/v1/workspace')).status).toBe(200);
    }
    expect(JSON.parse((await api('/v1/links')).body).data.length).toBe(before);
  });

  it('counts per-address limits on the real client address, as the gateway saw it', async () => {
    // 127.0.0.2 uses up its unknown-slug quota (5) on both redirect processes (round robin; Redis counts for both).
    for (let i = 0; i < 5; i++) expect((await send(`/nope-${i}`, { localAddress: '127.0.0.2' })).status).toBe(404);
    const refused = await send('/nope-5', { localAddress: '127.0.0.2' });
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    // Another address is not refused, even when it claims to be the refused one.
    const other = await send('/nope-6', { localAddress: '127.0.0.3', headers: { 'x-forwarded-for': '127.0.0.2' } });
    expect(other.status).toBe(404);
    expect((await send('/stack', { localAddress: '127.0.0.3' })).status).toBe(302);
    expect((await send('/stack', { localAddress: '127.0.0.2' })).status).toBe(429);
  });

  it('loses no request when a redirect process is killed under load (the gateway retries, then its health check drops it)', async () => {
    expect((await api('/v1/links', 'POST', { url: 'https://example.com/load', slug: 'load' })).status).toBe(201);
    const agent = new Agent({ keepAlive: true, maxSockets: 8, ca });
    const results: { at: number; ok: boolean; detail: string }[] = [];
    const start = Date.now();
    let killedAt = 0;
    const stopAt = start + 5000;
    const worker = async () => {
      while (Date.now() < stopAt) {
        try {
          const res = await send('/load', { agent, localAddress: '127.0.0.4' });
          results.push({ at: Date.now(), ok: res.status === 302, detail: String(res.status) });
        } catch (err) {
          results.push({ at: Date.now(), ok: false, detail: String(err) });
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, worker));
    await sleep(1000);
    process.kill(stack.pids['redirect-1']!, 'SIGKILL');
    killedAt = Date.now();
    await load;
    agent.destroy();
    // When the gateway's active health check noticed: its first failed check of that upstream after the kill.
    const upstream = new URL(stack.urls['redirect-1']!).host;
    let noticedMs: number | undefined;
    for (let waited = 0; noticedMs === undefined && waited < 3000; waited += 100) {
      for (const line of stack.output().split('\n')) {
        if (!line.startsWith('[gateway] ') || !line.includes('health_checker') || !line.includes(upstream)) continue;
        const ts = Number((JSON.parse(line.slice(10)) as { ts: number }).ts) * 1000;
        if (ts >= killedAt - 50) {
          noticedMs = ts - killedAt;
          break;
        }
      }
      if (noticedMs === undefined) await sleep(100);
    }
    const failed = results.filter((r) => !r.ok);
    const after = results.filter((r) => r.at > killedAt);
    console.log(
      `stack kill: ${results.length} requests, ${after.length} after the kill, ${failed.length} failed, ` +
        `health check noticed after ${noticedMs?.toFixed(0)} ms` +
        (failed.length ? ` (first: ${failed.slice(0, 10).map((f) => `${f.at - killedAt} ms: ${f.detail}`).join('; ')})` : ''),
    );
    expect(after.length).toBeGreaterThan(100);
    // health_interval 1 s + health_timeout 1 s (a refused connection fails at once, so about 1 s at most).
    expect(noticedMs).toBeDefined();
    expect(noticedMs!).toBeLessThanOrEqual(2000 + 500);
    // The documented bound: out of the pool within health_interval + health_timeout (2 s); with lb_try_duration
    // not even a request inside that window fails.
    expect(failed.filter((f) => f.at > killedAt + 2000)).toEqual([]);
    expect(failed).toEqual([]);
  });

  it('stops every process it started on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => stack.child.once('exit', (code) => resolve(code)));
    stack.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const [name, pid] of Object.entries(stack.pids)) expect(alive(pid), name).toBe(false);
    expect(stack.output()).not.toMatch(/\[(api|redirect-2|consumer|gateway)\] exited with/);
  });
});
