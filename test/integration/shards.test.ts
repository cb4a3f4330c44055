// Links over 3 `file:` shards through the real app: each link on the shard of its address's bucket and nowhere
// else, the list merged across shards page by page, a PATCH that changes shard taking the link's rows along, and a
// domain's deletion checked against the link directory on the control database.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Link } from '../../src/modules/links/links.schemas.ts';
import { bucketOf } from '../../src/platform/db/shards.ts';
import { openShards } from '../../src/runtimes/database.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';

let t: TestApp;

beforeEach(async () => {
  t = await createTestApp({}, { shards: 3 });
});

afterEach(() => {
  t.close();
});

async function createLink(body: Record<string, unknown>): Promise<Link> {
  const res = await t.request('/v1/links', { method: 'POST', json: body });
  if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
  return (await res.json()) as Link;
}

const shardOf = (domain: string, slug: string) => t.shards!.map[bucketOf(domain, slug)]!;
const rows = async (shard: number, sql: string, args: string[] = []) =>
  Number((await t.shards!.shards[shard]!.client.execute({ sql, args })).rows[0]!.n);

describe('links over 3 shards', () => {
  it('stores each link on the shard of its address only, and none on the control database', async () => {
    const domain = t.config.defaultDomain;
    const slugs = Array.from({ length: 30 }, (_, i) => `s${i}`);
    for (const slug of slugs) await createLink({ url: `https://example.com/${slug}`, slug, tags: ['t'] });
    expect(await t.count('links')).toBe(0);
    const perShard = [0, 1, 2].map((s) => slugs.filter((slug) => shardOf(domain, slug) === s).length);
    expect(perShard.every((n) => n > 0)).toBe(true);
    for (const s of [0, 1, 2]) {
      expect(await rows(s, 'select count(*) as n from links')).toBe(perShard[s]);
      expect(await rows(s, 'select count(*) as n from link_tags')).toBe(perShard[s]);
    }
    for (const slug of slugs.slice(0, 5)) {
      const res = await t.request(`/${slug}`, { key: null, headers: { host: domain } });
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe(`https://example.com/${slug}`);
    }
  });

  it('pages through the merged list newest first, each link once, also filtered, however shards interleave', async () => {
    const created: Link[] = [];
    // Several links per millisecond (the clock is frozen between steps): ties broken by id across shards.
    for (let i = 0; i < 25; i++) {
      if (i % 4 === 0) t.clock.now = new Date(t.clock.now.getTime() + 1);
      created.push(await createLink({ url: `https://example.com/${i}`, slug: `p${i}`, tags: i % 2 ? ['odd'] : [] }));
    }
    const expected = [...created].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || (a.id < b.id ? 1 : -1)).map((l) => l.id);
    for (const [query, ids] of [['', expected], ['&tag=odd', expected.filter((id) => created.find((l) => l.id === id)!.tags.length)]] as const) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await t.request(`/v1/links?limit=4${query}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        const page = (await res.json()) as { data: Link[]; nextCursor: string | null };
        expect(page.data.length).toBeLessThanOrEqual(4);
        seen.push(...page.data.map((l) => l.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toEqual(ids);
    }
  });

  it('moves a link, its tags and its clicks to the shard of its new address, keeping its id', async () => {
    const domain = t.config.defaultDomain;
    const from = 'move-me';
    const to = Array.from({ length: 100 }, (_, i) => `moved-${i}`).find((s) => shardOf(domain, s) !== shardOf(domain, from))!;
    const link = await createLink({ url: 'https://example.com/m', slug: from, tags: ['keep'] });
    const old = shardOf(domain, from);
    const now = shardOf(domain, to);
    await t.shards!.shards[old]!.client.execute({
      sql: "insert into clicks (id, workspace_id, link_id, at, device, browser, os, bot) values ('clk_1', ?, ?, 1, 'desktop', 'x', 'y', 0)",
      args: [t.workspaceId, link.id],
    });
    const res = await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: { slug: to } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Link).slug).toBe(to);
    expect(await rows(old, 'select count(*) as n from links')).toBe(0);
    expect(await rows(old, 'select count(*) as n from clicks')).toBe(0);
    expect(await rows(now, 'select count(*) as n from links where id = ?', [link.id])).toBe(1);
    expect(await rows(now, 'select count(*) as n from link_tags where link_id = ?', [link.id])).toBe(1);
    expect(await rows(now, 'select count(*) as n from clicks where link_id = ?', [link.id])).toBe(1);
    const got = await t.request(`/v1/links/${link.id}`);
    expect(((await got.json()) as Link).slug).toBe(to);
    expect((await t.request(`/${to}`, { key: null, headers: { host: domain } })).status).toBe(302);
    expect((await t.request(`/${from}`, { key: null, headers: { host: domain } })).status).toBe(404);
    // A move onto a taken address is refused and leaves the link where it was.
    await createLink({ url: 'https://example.com/other', slug: 'taken' });
    expect((await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: { slug: 'taken' } })).status).toBe(409);
    expect(((await (await t.request(`/v1/links/${link.id}`)).json()) as Link).slug).toBe(to);
    expect((await t.request(`/v1/links/${link.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await t.request(`/v1/links/${link.id}`)).status).toBe(404);
    expect(Number((await t.db.client.execute('select count(*) as n from link_buckets')).rows[0]!.n)).toBe(1);
  });

  it('keeps a domain with a link on it, and deletes it once the link is gone', async () => {
    const add = await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example' } });
    expect(add.status).toBe(201);
    const domainId = ((await add.json()) as { id: string }).id;
    const link = await createLink({ url: 'https://example.com/d', slug: 'd', domain: 'go.example' });
    expect((await t.request(`/v1/domains/${domainId}`, { method: 'DELETE' })).status).toBe(409);
    expect((await t.request(`/v1/links/${link.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await t.request(`/v1/domains/${domainId}`, { method: 'DELETE' })).status).toBe(204);
  });
});

describe('turning a single database into a sharded one', () => {
  it('refuses to start over a control database that holds links, saying why', async () => {
    const single = await createTestApp();
    try {
      const res = await single.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', slug: 'old' } });
      expect(res.status).toBe(201);
      const config = { ...single.config, databaseShards: [`file:${single.dbPath}.shard-0`] };
      await expect(openShards(config, single.db)).rejects.toThrow(/holds links of a single-database deployment/);
    } finally {
      single.close();
    }
  });
});
