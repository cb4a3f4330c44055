// OWASP API6:2023 Unrestricted Access to Sensitive Business Flows, against hop on Node over sqld with a small
// quota of unknown slugs per address: what `maxClicks` protects (human visits: HEAD and bots are answered without
// using it up, docs/architecture.md), and the enumeration of slugs, bounded per address even in a burst.
import { beforeAll, expect, it } from 'vitest';
import { expectProblem, type Workspace } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { SLACK } from '../support/agents.ts';
import { owaspClient } from './client.ts';

const NOT_FOUND_QUOTA = 5;
const env = { HOP_CLIENT_IP_HEADER: 'x-forwarded-for', HOP_RATE_LIMIT_NOT_FOUND: `${NOT_FOUND_QUOTA}/60s` };
const HUMAN = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36';

describeTarget({ runtime: 'node', storage: 'sqld', env }, (target) => {
  const { api, createWorkspace, createLink } = owaspClient(target);
  let ws: Workspace;
  let address = 0;
  const visit = (slug: string, init: { method?: string; ua?: string } = {}) =>
    api(`/${slug}`, { method: init.method ?? 'GET', headers: { 'user-agent': init.ua ?? HUMAN, 'x-forwarded-for': `203.0.113.${++address}` } });

  beforeAll(async () => {
    ws = await createWorkspace('api6');
  });

  it('serves a one-time link to HEAD and bots without spending it, then once to a human, then 410 to everyone', async () => {
    await createLink(ws, { url: 'https://example.com/invitation', slug: 'api6-once', maxClicks: 1 });
    for (let i = 0; i < 3; i++) {
      expect((await visit('api6-once', { method: 'HEAD' })).status).toBe(302);
      expect((await visit('api6-once', { ua: SLACK })).status).toBe(302);
    }
    const human = await visit('api6-once');
    expect(human.status).toBe(302);
    expect(human.headers.get('cache-control')).toBe('no-store');
    // The click is counted once its batch is stored (about a second): then the link is spent for every client.
    // Polled with HEAD: a human GET in that second would be served too (the documented overshoot).
    await expect.poll(async () => (await visit('api6-once', { method: 'HEAD' })).status, { timeout: 10_000, interval: 300 }).toBe(410);
    await expectProblem(await visit('api6-once'), 410, 'link-gone');
    await expectProblem(await visit('api6-once', { ua: SLACK }), 410, 'link-gone');
    expect((await visit('api6-once', { method: 'HEAD' })).status).toBe(410);
    const read = (await (await api('/v1/links?limit=1', { key: ws.key })).json()) as { data: Array<{ clicks: number }> };
    expect(read.data[0]!.clicks).toBe(1);
  });

  it(`answers at most ${NOT_FOUND_QUOTA} of 30 concurrent unknown slugs from one address, then refuses it every slug`, async () => {
    await createLink(ws, { url: 'https://example.com/known', slug: 'api6-known' });
    const headers = { 'x-forwarded-for': '192.0.2.66', 'user-agent': HUMAN };
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => api(`/guess-${i}`, { headers })));
    const statuses = answers.map((r) => r.status);
    await Promise.all(answers.map((r) => r.body?.cancel()));
    expect(statuses.filter((s) => s === 404).length).toBeLessThanOrEqual(NOT_FOUND_QUOTA);
    expect(statuses.filter((s) => s !== 404 && s !== 429)).toEqual([]);
    // A known slug is refused too, so that guessing cannot go on between hits.
    await expectProblem(await api('/api6-known', { headers }), 429, 'rate-limited');
    expect((await api('/api6-known', { headers: { ...headers, 'x-forwarded-for': '192.0.2.67' } })).status).toBe(302);
  });

  it('generates slugs that cannot be walked: no two consecutive, at least 7 characters', async () => {
    const [first, second] = [await createLink(ws, { url: 'https://example.com/1' }), await createLink(ws, { url: 'https://example.com/2' })];
    expect(first.slug.length).toBeGreaterThanOrEqual(7);
    expect(second.slug).not.toBe(first.slug);
    const common = [...first.slug].findIndex((c, i) => second.slug[i] !== c);
    expect(common).toBeLessThan(first.slug.length - 1);
  });
});
