// hop as Workers (wrangler dev: the redirect Worker and the click consumer) over a control sqld and 3 sqld shards,
// each with a sqld replica (HOP_DATABASE_SHARDS=`primary|replica,...`), as real processes (targets.ts): links
// created on every shard redirect, read back by id, list across the shards page by page, move shard on a PATCH of
// their slug, and their clicks, stored by the consumer Worker on their shards, show in the link's and the
// workspace's statistics. (The whole black-box suite runs on workerd over one sqld: workerd-sqld.test.ts.)
import { beforeAll, expect, it } from 'vitest';
import { bucketOf, defaultBucketMap } from '../../src/platform/db/shards.ts';
import { call, type Workspace } from './suite.ts';
import { describeTarget } from './targets.ts';

const SHARDS = 3;
const shardOf = (slug: string) => defaultBucketMap(SHARDS)[bucketOf('localhost', slug)]!;

describeTarget({ runtime: 'workerd', storage: 'sqld', shards: SHARDS, replicas: true }, (target) => {
  let ws: Workspace;
  /** Two links per shard, by shard index. */
  const links: Array<Array<{ id: string; slug: string }>> = Array.from({ length: SHARDS }, () => []);
  const api = (path: string, init?: Parameters<typeof call>[2]) => call(target().baseUrl, path, { key: ws.key, ...init });
  const visit = async (slug: string) => {
    const res = await fetch(`${target().baseUrl}/${slug}`, { headers: { host: new URL(target().publicUrl).host }, redirect: 'manual' });
    await res.text();
    return res;
  };

  beforeAll(async () => {
    const res = await call(target().baseUrl, '/v1/workspaces', { method: 'POST', key: target().adminToken, json: { name: 'workerd-shards' } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { id: string; name: string; apiKey: { key: string } };
    ws = { id: body.id, name: body.name, key: body.apiKey.key };
    for (let i = 0; links.some((l) => l.length < 2); i++) {
      const slug = `wk-${i}`;
      if (links[shardOf(slug)]!.length >= 2) continue;
      const created = await api('/v1/links', { method: 'POST', json: { url: `https://example.com/${slug}`, slug, tags: ['wk'] } });
      expect(created.status).toBe(201);
      links[shardOf(slug)]!.push({ id: ((await created.json()) as { id: string }).id, slug });
    }
  }, 60_000);

  it('redirects, reads by id and lists every shard\'s links, page by page', async () => {
    for (const { id, slug } of links.flat()) {
      const res = await visit(slug);
      expect(res.status, slug).toBe(302);
      expect(res.headers.get('location')).toBe(`https://example.com/${slug}`);
      const one = await api(`/v1/links/${id}`);
      expect(one.status).toBe(200);
      expect(((await one.json()) as { slug: string }).slug).toBe(slug);
    }
    expect((await visit('wk-no-such-link')).status).toBe(404);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await api(`/v1/links?limit=4&tag=wk${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { data: Array<{ slug: string }>; nextCursor: string | null };
      seen.push(...page.data.map((l) => l.slug));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual(links.flat().map((l) => l.slug).sort());
  }, 60_000);

  it('moves a link to another shard on a PATCH of its slug, and redirects from there at once', async () => {
    const { id, slug } = links[0]![1]!;
    let moved = `${slug}-moved`;
    for (let i = 0; shardOf(moved) === 0; i++) moved = `${slug}-moved-${i}`;
    const res = await api(`/v1/links/${id}`, { method: 'PATCH', json: { slug: moved } });
    expect(res.status).toBe(200);
    expect((await visit(moved)).status).toBe(302);
    expect((await visit(slug)).status).toBe(404);
    links[0]![1] = { id, slug: moved };
  }, 30_000);

  it('counts clicks stored by the consumer Worker on each shard, per link and per workspace', async () => {
    for (const { slug } of links.flat()) expect((await visit(slug)).status).toBe(302);
    const total = async (path: string) => {
      const res = await api(path);
      expect(res.status, path).toBe(200);
      const { totals } = (await res.json()) as { totals: { humans: number; bots: number } };
      return totals.humans + totals.bots;
    };
    // The first test's visits and these, two per link, and the moved link's visit at its new address, through the
    // local queue (a workspace's sum counts every shard, wherever the moved link's first click landed).
    const expected = 2 * links.flat().length + 1;
    const deadline = Date.now() + 30_000;
    let sum = await total('/v1/stats');
    while (sum < expected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      sum = await total('/v1/stats');
    }
    expect(sum).toBe(expected);
    for (const { id } of [links[1]![0]!, links[2]![0]!]) expect(await total(`/v1/links/${id}/stats`)).toBe(2);
  }, 60_000);
});
