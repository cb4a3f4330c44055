// The black-box suite (suite.ts) against hop on Node with a control sqld and 3 shards, each a sqld primary with a
// sqld replica of its own (HOP_DATABASE_SHARDS=`primary|replica,...`), started as real processes (targets.ts). The
// suite's reads right after writes hold because only redirects and statistics read replicas. Then, on the same
// processes, a replica is frozen (SIGSTOP) and another killed: redirects of their shards still answer 302 through
// the primaries, and /metrics counts each skip. (shard-down.test.ts runs 3 sqld shards without replicas.)
import { beforeAll, describe, expect, it } from 'vitest';
import { bucketOf, defaultBucketMap } from '../../src/platform/db/shards.ts';
import { WRITTEN_RECENTLY_MS } from '../../src/modules/links/links.sharded.ts';
import { blackBoxSuite, call, type Workspace } from './suite.ts';
import { describeTarget, type Target } from './targets.ts';

const SHARDS = 3;
/** Links per shard: three failed reads open a replica's breaker, the fourth passes it by unasked. */
const PER_SHARD = 4;

describeTarget({ runtime: 'node', storage: 'sqld', shards: SHARDS, replicas: true }, (target) => {
  /** Per shard, links created before the suite: by the time it ends their writes are no longer recent. */
  const slugs: string[][] = Array.from({ length: SHARDS }, () => []);
  let created = 0;
  const shardOf = (slug: string) => defaultBucketMap(SHARDS)[bucketOf('localhost', slug)]!;

  beforeAll(async () => {
    // Seven sqld processes have just started beside the rest of the suite: a 503 (Retry-After) is waited out, as a
    // client would, and anything else fails with its body.
    let res = await call(target().baseUrl, '/v1/workspaces', { method: 'POST', key: target().adminToken, json: { name: 'replicas' } });
    for (const until = Date.now() + 15_000; res.status === 503 && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 1000));
      res = await call(target().baseUrl, '/v1/workspaces', { method: 'POST', key: target().adminToken, json: { name: 'replicas' } });
    }
    expect(res.status, await res.clone().text()).toBe(201);
    const body = (await res.json()) as { id: string; name: string; apiKey: { key: string } };
    const ws: Workspace = { id: body.id, name: body.name, key: body.apiKey.key };
    for (let i = 0; slugs.some((s) => s.length < PER_SHARD); i++) {
      const slug = `rp-${i}`;
      if (slugs[shardOf(slug)]!.length >= PER_SHARD) continue;
      const link = await call(target().baseUrl, '/v1/links', { method: 'POST', key: ws.key, json: { url: `https://example.com/${slug}`, slug } });
      expect(link.status).toBe(201);
      slugs[shardOf(slug)]!.push(slug);
    }
    created = Date.now();
  });

  blackBoxSuite(target);

  describe('a replica frozen, another killed', () => {
    it('answers redirects through the primaries and counts every skip in /metrics', async () => {
      // The suite normally takes minutes; run alone, wait out the window in which this process reads its own writes
      // from the primaries.
      await new Promise((r) => setTimeout(r, Math.max(0, created + WRITTEN_RECENTLY_MS + 100 - Date.now())));
      const before = await replicaMetrics(target());
      // A live replica serves its shard's redirects.
      expect(await redirect(target(), slugs[0]![0]!)).toBe(302);
      const served = await replicaMetrics(target());
      expect(served['reads{shard="1",served_by="replica"}'] ?? 0).toBeGreaterThan(before['reads{shard="1",served_by="replica"}'] ?? 0);

      // Frozen: its reads miss the replica deadline (500 ms) and go to the primary; after three the breaker opens.
      target().shardReplicas[1]!.signal('SIGSTOP');
      // Killed: its reads fail at once (connection refused) and go to the primary.
      target().shardReplicas[2]!.signal('SIGKILL');
      try {
        for (const shard of [1, 2]) {
          for (const slug of slugs[shard]!) {
            const started = Date.now();
            expect(await redirect(target(), slug), slug).toBe(302);
            expect(Date.now() - started).toBeLessThan(2000);
          }
        }
        const after = await replicaMetrics(target());
        const grew = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
        expect(grew('skipped{shard="2",replica="1",reason="timeout"}')).toBe(3);
        expect(grew('skipped{shard="3",replica="1",reason="error"}')).toBe(3);
        expect(grew('skipped{shard="2",replica="1",reason="open"}')).toBe(1);
        expect(grew('skipped{shard="3",replica="1",reason="open"}')).toBe(1);
        expect(grew('reads{shard="2",served_by="primary"}')).toBe(PER_SHARD);
        expect(grew('reads{shard="3",served_by="primary"}')).toBe(PER_SHARD);
      } finally {
        target().shardReplicas[1]!.signal('SIGCONT');
      }
    }, 60_000);
  });
});

/** One redirect on the default domain, its status. */
async function redirect(target: Target, slug: string): Promise<number> {
  const res = await fetch(`${target.baseUrl}/${slug}`, { headers: { host: new URL(target.publicUrl).host }, redirect: 'manual' });
  await res.text();
  return res.status;
}

/** hop's replica counters from /metrics, keyed `skipped{...}` and `reads{...}` with their labels as exported. */
async function replicaMetrics(target: Target): Promise<Record<string, number>> {
  const text = await (await fetch(`${target.baseUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^hop_database_replica_(skipped|reads)_total(\{[^}]*\}) (\d+)/gm)) {
    // Labels in a fixed order, whatever order /metrics writes them in.
    const labels = [...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => `${k}="${v}"`);
    const order = ['shard', 'replica', 'reason', 'served_by'];
    labels.sort((a, b) => order.indexOf(a.split('=')[0]!) - order.indexOf(b.split('=')[0]!));
    out[`${m[1]}{${labels.join(',')}}`] = Number(m[3]);
  }
  return out;
}
