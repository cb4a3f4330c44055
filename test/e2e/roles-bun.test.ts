// The roles apart on Bun: `HOP_STACK_RUNTIME=bun` runs the API process, both redirect processes and the consumer on
// Bun against sqld, Redis Streams and the shared Redis cache, behind Caddy. A link created on the API process is
// followed on each redirect process, and the consumer's stored clicks show in the API's statistics. (Node runs the
// same topology in test/e2e/stack.test.ts.)
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingForStack, startStack, type Stack } from '../../src/cli/stack.ts';

function available(): boolean {
  const missing = missingForStack();
  if (!missing.length) return true;
  if (process.env.CI === 'true') throw new Error(`the stack is required under CI=true; install:\n  ${missing.join('\n  ')}`);
  console.warn(`skipping the Bun roles tests; install:\n  ${missing.join('\n  ')}`);
  return false;
}

const BROWSER = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!available())('roles apart on Bun, behind the gateway', { timeout: 90_000 }, () => {
  let stack: Stack;
  const url = (name: string) => stack.processes.find((p) => p.name === name)!.url!;
  const auth = () => ({ authorization: `Bearer ${stack.adminKey}`, 'content-type': 'application/json' });

  beforeAll(async () => {
    stack = await startStack({ ...process.env, HOP_STACK_RUNTIME: 'bun', HOP_LOG_LEVEL: 'warn' });
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs every hop process on Bun', () => {
    for (const name of ['api', 'redirect-1', 'redirect-2', 'consumer']) {
      const pid = stack.processes.find((p) => p.name === name)!.pid;
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), name).toMatch(/bun/);
    }
  });

  it('creates on the API process, redirects on both redirect processes, counts the clicks the consumer stored', async () => {
    const created = await fetch(`${url('api')}/v1/links`, {
      method: 'POST',
      headers: auth(),
      body: JSON.stringify({ url: 'https://example.com/bun', slug: 'bun' }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    for (const name of ['redirect-1', 'redirect-2']) {
      const res = await fetch(`${url(name)}/bun`, { redirect: 'manual', headers: { 'user-agent': BROWSER, host: new URL(stack.url).host } });
      expect(res.status, name).toBe(302);
      expect(res.headers.get('location')).toBe('https://example.com/bun');
      expect((await fetch(`${url(name)}/v1/links`, { headers: auth() })).status, name).toBe(404);
    }
    expect((await fetch(`${url('api')}/bun`, { redirect: 'manual' })).status).toBe(404);
    let totals: unknown;
    for (let i = 0; i < 50; i++) {
      const stats = await fetch(`${url('api')}/v1/links/${id}/stats`, { headers: auth() });
      totals = ((await stats.json()) as { totals: unknown }).totals;
      if ((totals as { humans: number }).humans === 2) break;
      await sleep(200);
    }
    expect(totals).toEqual({ humans: 2, bots: 0 });
  });

  it('serves Bun through Caddy over HTTPS', async () => {
    const ca = readFileSync(stack.caFile);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${stack.url}/bun`, { ca }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(302);
  });
});
