// A shard dies (SIGKILL of its sqld) under hop on Node with 3 shards: workspace-wide reads (the link list, the
// workspace's statistics) answer 503 problem+json rather than a silently partial answer, a redirect of a link on a
// live shard still answers 302, one on the dead shard answers 503 (never a 500); and once the shard is back on the
// same data, the list is whole again.
import { beforeAll, expect, it } from 'vitest';
import { bucketOf, defaultBucketMap } from '../../src/platform/db/shards.ts';
import { call, type Workspace } from './suite.ts';
import { describeTarget } from './targets.ts';

const SHARDS = 3;
const DEAD = 2;

describeTarget({ runtime: 'node', storage: 'sqld', shards: SHARDS }, (target) => {
  let ws: Workspace;
  /** One unredirected link per shard, its slug by shard index (the default bucket map of a fresh deployment). */
  const slugs: string[] = [];
  const shardOf = (slug: string) => defaultBucketMap(SHARDS)[bucketOf('localhost', slug)]!;

  beforeAll(async () => {
    const res = await call(target().baseUrl, '/v1/workspaces', { method: 'POST', key: target().adminToken, json: { name: 'shard-down' } });
    const body = (await res.json()) as { id: string; name: string; apiKey: { key: string } };
    ws = { id: body.id, name: body.name, key: body.apiKey.key };
    for (let i = 0; slugs.filter(Boolean).length < SHARDS; i++) {
      const slug = `sd-${i}`;
      if (slugs[shardOf(slug)]) continue;
      const link = await call(target().baseUrl, '/v1/links', { method: 'POST', key: ws.key, json: { url: `https://example.com/${slug}`, slug } });
      expect(link.status).toBe(201);
      slugs[shardOf(slug)] = slug;
    }
    const list = await call(target().baseUrl, '/v1/links?limit=100', { key: ws.key });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { data: unknown[] }).data).toHaveLength(SHARDS);
  });

  it('answers 503 to the list and the statistics, redirects from live shards, and is whole again once the shard is back', async () => {
    const shard = target().shardSqlds[DEAD]!;
    const exited = new Promise<void>((resolve) => shard.current.child.once('exit', () => resolve()));
    shard.current.signal('SIGKILL');
    await exited;

    for (const path of ['/v1/links?limit=100', '/v1/stats']) {
      const started = Date.now();
      const res = await call(target().baseUrl, path, { key: ws.key });
      expect(res.status, path).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(res.headers.get('retry-after')).not.toBeNull();
      expect(Date.now() - started).toBeLessThan(5000);
      await res.text();
    }

    for (const [index, slug] of slugs.entries()) {
      const res = await fetch(`${target().baseUrl}/${slug}`, { headers: { host: new URL(target().publicUrl).host }, redirect: 'manual' });
      await res.text();
      if (index === DEAD) expect(res.status, `${slug} on the dead shard`).toBe(503);
      else {
        expect(res.status, `${slug} on live shard ${index}`).toBe(302);
        expect(res.headers.get('location')).toBe(`https://example.com/${slug}`);
      }
    }

    await shard.restart();
    const list = await call(target().baseUrl, '/v1/links?limit=100', { key: ws.key });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { data: Array<{ slug: string }> }).data.map((l) => l.slug).sort()).toEqual([...slugs].sort());
  }, 60_000);
});
