import { describe, expect, it } from 'vitest';
import { createLru } from '../../src/platform/cache/lru.ts';
import { guardShared, TOMBSTONE, type SharedStore } from '../../src/platform/cache/shared.ts';
import { createTieredCache, type Codec } from '../../src/platform/cache/tiered.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createMetrics } from '../../src/platform/metrics.ts';
import { createCachedLookup, linkCodec } from '../../src/modules/redirect/redirect.cache.ts';
import { loadConfig } from '../../src/config.ts';
import type { RedirectLink } from '../../src/modules/redirect/redirect.lookup.ts';

describe('createLru', () => {
  it('evicts the least recently used entry past maxEntries; a hit makes an entry recent', () => {
    const lru = createLru<number>({ maxEntries: 2, maxBytes: 1000 });
    lru.set('a', 1, 1000, 1);
    lru.set('b', 2, 1000, 1);
    expect(lru.get('a')).toBe(1);
    lru.set('c', 3, 1000, 1);
    expect(lru.get('b')).toBeUndefined();
    expect([lru.get('a'), lru.get('c'), lru.size]).toEqual([1, 3, 2]);
  });

  it('keeps an entry that is hit while old, and does not reorder recent ones on a hit', () => {
    const lru = createLru<string>({ maxEntries: 4, maxBytes: 1000 });
    for (const k of ['a', 'b', 'c', 'd']) lru.set(k, k, 1000, 1);
    expect(lru.get('a')).toBe('a'); // old: moved to the end
    expect(lru.get('d')).toBe('d'); // recent: stays where it is
    lru.set('e', 'e', 1000, 1);
    lru.set('f', 'f', 1000, 1);
    expect(['a', 'b', 'c', 'd', 'e', 'f'].map((k) => lru.get(k) ?? '-').join('')).toBe('a--def');
  });

  it('holds at most maxBytes, refuses an entry larger than that, and accounts for replaced entries', () => {
    const lru = createLru<string>({ maxEntries: 100, maxBytes: 100 });
    lru.set('a', 'x', 1000, 60);
    lru.set('b', 'y', 1000, 30);
    lru.set('c', 'z', 1000, 30);
    expect([lru.get('a'), lru.get('b'), lru.get('c'), lru.bytes]).toEqual([undefined, 'y', 'z', 60]);
    lru.set('huge', 'h', 1000, 101);
    expect([lru.get('huge'), lru.size]).toEqual([undefined, 2]);
    lru.set('b', 'y2', 1000, 10);
    expect(lru.bytes).toBe(40);
    lru.delete('b');
    lru.delete('missing');
    expect([lru.bytes, lru.size]).toEqual([30, 1]);
  });

  it('drops an entry once its own lifetime has passed', () => {
    let now = 0;
    const lru = createLru<string>({ maxEntries: 10, maxBytes: 1000, now: () => now });
    lru.set('short', 's', 100, 1);
    lru.set('long', 'l', 1000, 1);
    now = 100;
    expect([lru.get('short'), lru.get('long'), lru.size, lru.bytes]).toEqual([undefined, 'l', 1, 1]);
  });

  it('calls due once on a hit past the refresh point, again only for a value stored anew', () => {
    let now = 0;
    const lru = createLru<string>({ maxEntries: 10, maxBytes: 1000, now: () => now });
    let due = 0;
    const onDue = () => void due++;
    lru.set('k', 'v', 1000, 1, 800);
    lru.set('plain', 'p', 1000, 1);
    now = 799;
    expect([lru.get('k', onDue), due]).toEqual(['v', 0]);
    now = 800;
    expect([lru.get('k', onDue), lru.get('k', onDue), lru.get('plain', onDue), due]).toEqual(['v', 'v', 'p', 1]);
    lru.set('k', 'v2', 1000, 1, 800);
    now = 1600;
    expect([lru.get('k', onDue), due]).toEqual(['v2', 2]);
  });
});

const textCodec: Codec<string> = {
  encode: (v) => JSON.stringify({ v }),
  decode(raw) {
    try {
      const parsed = JSON.parse(raw) as { v?: unknown };
      return typeof parsed.v === 'string' ? parsed.v : undefined;
    } catch {
      return undefined;
    }
  },
  size: (v) => v.length,
};

/** An in-memory SharedStore with Redis's semantics (NX fills, tombstones), recording calls; `down` makes it fail. */
function memoryStore(negatives = true) {
  const data = new Map<string, string>();
  const calls: string[] = [];
  const state = { down: false };
  const fail = () => {
    if (state.down) throw new Error('store down');
  };
  const store: SharedStore = {
    kind: negatives ? 'redis' : 'kv',
    negatives,
    async get(key) {
      calls.push(`get ${key}`);
      fail();
      return data.get(key) ?? null;
    },
    async fill(key, value) {
      calls.push(`fill ${key}`);
      fail();
      if (!data.has(key)) data.set(key, value);
    },
    async invalidate(keys) {
      calls.push(`invalidate ${keys.join(',')}`);
      fail();
      for (const k of keys) data.set(k, TOMBSTONE);
    },
  };
  return { store, data, calls, state };
}

function tiered(options: { shared?: SharedStore; singleFlight?: boolean; now?: () => number; random?: () => number } = {}) {
  const logs: string[] = [];
  const logger = createLogger({ level: 'info', write: (l) => logs.push(l) });
  const metrics = createMetrics();
  const cache = createTieredCache<string>({
    name: 'test',
    l1: createLru({ maxEntries: 100, maxBytes: 10_000, now: options.now }),
    shared: options.shared && guardShared(options.shared, { timeoutMs: 50, logger, metrics, failureThreshold: 2, cooldownMs: 60_000 }),
    codec: textCodec,
    ttlMs: () => 1000,
    negativeTtlMs: 100,
    sharedTtlS: 60,
    negativeSharedTtlS: 5,
    tombstoneTtlS: 10,
    singleFlight: options.singleFlight ?? true,
    logger,
    metrics,
    // The latest refresh point unless a test draws others.
    random: options.random ?? (() => 1),
  });
  return { cache, logs, metrics };
}

const count = (metrics: ReturnType<typeof createMetrics>, tier: string, result: string) => {
  metrics.render();
  return metrics.value('hop_cache_requests_total', { cache: 'test', tier, result });
};

describe('createTieredCache', () => {
  it('answers a first-tier hit synchronously, and "not found" as null for its short lifetime', () => {
    let now = 0;
    let loads = 0;
    const { cache, metrics } = tiered({ now: () => now });
    const load = () => (loads++, loads === 1 ? undefined : 'now there');
    expect(cache.get('k', load)).toBeNull();
    expect(cache.get('k', load)).toBeNull();
    expect(loads).toBe(1);
    now = 100;
    expect(cache.get('k', load)).toBe('now there');
    expect(cache.get('k', load)).toBe('now there');
    expect(loads).toBe(2);
    expect([count(metrics, 'memory', 'hit'), count(metrics, 'all', 'miss')]).toEqual([2, 2]);
    expect([count(metrics, 'memory', 'miss'), count(metrics, 'shared', 'miss')]).toEqual([2, 0]);
  });

  it('makes one load for many concurrent misses of one key (single flight)', async () => {
    let loads = 0;
    let release!: (v: string) => void;
    const { cache, metrics } = tiered();
    const load = () => {
      loads++;
      return new Promise<string>((resolve) => (release = resolve));
    };
    const answers = Array.from({ length: 1000 }, () => cache.get('hot', load));
    release('value');
    expect(await Promise.all(answers)).toEqual(Array(1000).fill('value'));
    expect(loads).toBe(1);
    expect(count(metrics, 'all', 'coalesced')).toBe(999);
  });

  it('without single flight (workerd), each concurrent miss loads', async () => {
    let loads = 0;
    const { cache } = tiered({ singleFlight: false });
    await Promise.all(Array.from({ length: 5 }, () => cache.get('k', async () => (loads++, 'v'))));
    expect(loads).toBe(5);
  });

  it('reads the shared tier before the loader, fills it after a load, and caches "not found" there too', async () => {
    const { store, data, calls } = memoryStore();
    const { cache, metrics } = tiered({ shared: store });
    data.set('warm', textCodec.encode('from shared'));
    expect(await cache.get('warm', () => 'from db')).toBe('from shared');
    expect(await cache.get('cold', () => 'from db')).toBe('from db');
    await new Promise((r) => setTimeout(r, 0));
    expect(data.get('cold')).toBe(textCodec.encode('from db'));
    expect(await cache.get('none', () => undefined)).toBeNull();
    await new Promise((r) => setTimeout(r, 0));
    expect(data.get('none')).toBe('-');
    expect(calls.filter((c) => c.startsWith('fill'))).toEqual(['fill cold', 'fill none']);
    expect([count(metrics, 'shared', 'hit'), count(metrics, 'all', 'miss')]).toEqual([1, 2]);
    // Per tier: what the first tier missed went to the shared one, which answered one and missed two.
    expect([count(metrics, 'memory', 'miss'), count(metrics, 'shared', 'miss')]).toEqual([3, 2]);
  });

  it('never stores "not found" in a store without negatives (KV), and reads a stray one as a miss', async () => {
    const { store, data } = memoryStore(false);
    const { cache } = tiered({ shared: store });
    expect(await cache.get('none', () => undefined)).toBeNull();
    await new Promise((r) => setTimeout(r, 0));
    expect(data.has('none')).toBe(false);
    data.set('stray', '-');
    expect(await cache.get('stray', () => 'real')).toBe('real');
  });

  it('drops a poisoned shared entry, serves the loader, logs and counts it', async () => {
    const { store, data } = memoryStore();
    const { cache, logs, metrics } = tiered({ shared: store });
    data.set('bad', '{"v": 42}');
    expect(await cache.get('bad', () => 'from db')).toBe('from db');
    await new Promise((r) => setTimeout(r, 0));
    expect(logs.some((l) => l.includes('cache entry failed validation'))).toBe(true);
    expect(count(metrics, 'shared', 'poisoned')).toBe(1);
    // Invalidated with a tombstone rather than refilled with the value read in the same breath.
    expect(data.get('bad')).toBe(TOMBSTONE);
  });

  it('invalidation drops the first tier at once and tombstones the shared tier, which refuses the next fill', async () => {
    const { store, data } = memoryStore();
    const { cache } = tiered({ shared: store });
    expect(await cache.get('k', () => 'old')).toBe('old');
    await cache.invalidate(['k']);
    expect(data.get('k')).toBe(TOMBSTONE);
    expect(await cache.get('k', () => 'new')).toBe('new');
    await new Promise((r) => setTimeout(r, 0));
    expect(data.get('k')).toBe(TOMBSTONE);
    expect(cache.get('k', () => 'unused')).toBe('new');
  });

  it('does not keep what a load read before an invalidation that happened during it', async () => {
    const { cache } = tiered();
    let release!: (v: string) => void;
    const before = cache.get('k', () => new Promise<string>((resolve) => (release = resolve)));
    await cache.invalidate(['k']);
    release('read before the change');
    expect(await before).toBe('read before the change');
    expect(await cache.get('k', () => 'after the change')).toBe('after the change');
  });

  it('keeps what a load read while another key was invalidated, on either tier', async () => {
    for (const shared of [false, true]) {
      const { cache } = tiered(shared ? { shared: memoryStore().store } : {});
      let release!: (v: string) => void;
      const inFlight = cache.get('k', () => new Promise<string>((resolve) => (release = resolve)));
      await cache.invalidate(['other']);
      cache.forget(['another']);
      release('k as read');
      expect(await inFlight).toBe('k as read');
      let loads = 0;
      expect(await cache.get('k', () => `loaded again ${++loads}`)).toBe('k as read');
      expect(loads).toBe(0);
    }
  });

  it('a failed load keeps nothing and the next miss loads again', async () => {
    const { cache } = tiered();
    await expect(cache.get('k', () => Promise.reject(new Error('database down')))).rejects.toThrow('database down');
    expect(() => cache.get('k', () => {
      throw new Error('thrown at once');
    })).toThrow('thrown at once');
    expect(await cache.get('k', () => 'up again')).toBe('up again');
  });

  it('refreshes a value hit in the last fifth of its life in the background, once, so it never expires in use', async () => {
    let now = 0;
    const { cache, metrics } = tiered({ now: () => now });
    let loads = 0;
    const load = () => Promise.resolve(`v${++loads}`);
    expect(await cache.get('k', load)).toBe('v1');
    now = 799;
    expect(cache.get('k', load)).toBe('v1');
    expect(loads).toBe(1);
    now = 800;
    // Answered from memory at once; one read ahead however many hits come while it runs.
    expect([cache.get('k', load), cache.get('k', load)]).toEqual(['v1', 'v1']);
    await new Promise((r) => setTimeout(r, 0));
    expect(loads).toBe(2);
    now = 1500;
    expect(cache.get('k', load)).toBe('v2');
    expect(count(metrics, 'all', 'refreshed')).toBe(1);
    expect(count(metrics, 'all', 'miss')).toBe(1);
  });

  it('draws each value\'s refresh point between half and four fifths of its life, anew at each refresh', async () => {
    let now = 0;
    const draws = [0, 0.5];
    const { cache } = tiered({ now: () => now, random: () => draws.shift() ?? 1 });
    let loads = 0;
    const load = () => Promise.resolve(`v${++loads}`);
    expect(await cache.get('k', load)).toBe('v1');
    now = 499;
    cache.get('k', load);
    await new Promise((r) => setTimeout(r, 0));
    expect(loads).toBe(1);
    now = 500;
    cache.get('k', load);
    await new Promise((r) => setTimeout(r, 0));
    expect(loads).toBe(2);
    // Stored again at 500 with a draw of 0.5: its refresh point is 650 ms later (0.65 of its life).
    now = 1149;
    cache.get('k', load);
    await new Promise((r) => setTimeout(r, 0));
    expect(loads).toBe(2);
    now = 1150;
    expect(cache.get('k', load)).toBe('v2');
    await new Promise((r) => setTimeout(r, 0));
    expect(loads).toBe(3);
  });

  it('values loaded together are refreshed at different times', async () => {
    let now = 0;
    const { cache } = tiered({ now: () => now, random: Math.random });
    const loads: number[] = [];
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    for (const key of keys) await cache.get(key, () => Promise.resolve(key));
    for (now = 0; now < 1000; now += 50) {
      for (const key of keys) cache.get(key, () => (loads.push(now), Promise.resolve(key)));
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(loads).toHaveLength(100);
    expect(Math.min(...loads)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...loads)).toBeLessThanOrEqual(800);
    // Spread over the window's 7 steps of 50 ms (about 14 each), not all at one: without the draw, 100 at 800 ms.
    // More than 40 in one step is over six standard deviations away.
    const perStep = new Map<number, number>();
    for (const t of loads) perStep.set(t, (perStep.get(t) ?? 0) + 1);
    expect(Math.max(...perStep.values())).toBeLessThanOrEqual(40);
  });

  it('a refresh that fails keeps the value until it expires; a refresh read before an invalidation is not kept', async () => {
    let now = 0;
    const { cache } = tiered({ now: () => now });
    expect(await cache.get('k', () => 'v1')).toBe('v1');
    now = 900;
    expect(cache.get('k', () => Promise.reject(new Error('database down')))).toBe('v1');
    await new Promise((r) => setTimeout(r, 0));
    expect(cache.get('k', () => 'unused')).toBe('v1');
    now = 1000;
    let release!: (v: string) => void;
    expect(await cache.get('k', () => 'v2')).toBe('v2');
    now = 1800;
    expect(cache.get('k', () => new Promise<string>((resolve) => (release = resolve)))).toBe('v2');
    await new Promise((r) => setTimeout(r, 0));
    await cache.invalidate(['k']);
    release('read before the change');
    await new Promise((r) => setTimeout(r, 0));
    expect(await cache.get('k', () => 'after the change')).toBe('after the change');
  });

  it('without single flight (workerd) nothing is read ahead', async () => {
    let now = 0;
    const { cache, metrics } = tiered({ now: () => now, singleFlight: false });
    let loads = 0;
    expect(await cache.get('k', () => `v${++loads}`)).toBe('v1');
    now = 900;
    expect(cache.get('k', () => `v${++loads}`)).toBe('v1');
    await new Promise((r) => setTimeout(r, 0));
    expect([loads, count(metrics, 'all', 'refreshed')]).toEqual([1, 0]);
  });

  it("forget (another worker's change) drops the first tier only, and a load in flight is not kept", async () => {
    const { store, data } = memoryStore();
    const { cache } = tiered({ shared: store });
    expect(await cache.get('k', () => 'old')).toBe('old');
    await new Promise((r) => setTimeout(r, 0));
    const shared = data.get('k');
    cache.forget(['k']);
    // The shared tier is the changing worker's to tombstone: forget leaves it as it was.
    expect(data.get('k')).toBe(shared);
    expect(await cache.get('k', () => 'unused')).toBe('old');

    const { cache: memory } = tiered();
    expect(await memory.get('m', () => 'old')).toBe('old');
    memory.forget(['m']);
    let release!: (v: string) => void;
    const inFlight = memory.get('m', () => new Promise<string>((resolve) => (release = resolve)));
    memory.forget(['m']);
    release('read before the change');
    expect(await inFlight).toBe('read before the change');
    expect(await memory.get('m', () => 'after the change')).toBe('after the change');
  });

  it('with the shared tier down: loads from the database, opens the circuit, and sends failed invalidations later', async () => {
    const { store, data, calls, state } = memoryStore();
    const { cache, logs, metrics } = tiered({ shared: store });
    state.down = true;
    expect(await cache.get('a', () => 'db a')).toBe('db a');
    expect(await cache.get('b', () => 'db b')).toBe('db b');
    expect(logs.some((l) => l.includes('shared cache circuit open'))).toBe(true);
    const before = calls.length;
    expect(await cache.get('c', () => 'db c')).toBe('db c');
    expect(calls.length).toBe(before); // The open circuit spares the store (and the request its deadline).
    await cache.invalidate(['a']);
    expect(logs.some((l) => l.includes('shared cache invalidation deferred'))).toBe(true);
    expect(metrics.render()).toContain('hop_cache_circuit_open{store="redis"} 1');
    expect(data.get('a')).toBeUndefined();
  });
});

describe('linkCodec', () => {
  const link: RedirectLink = {
    id: 'lnk_1',
    workspaceId: 'ws_1',
    domain: 'localhost',
    url: 'https://example.com/a?b=c',
    expiresAt: new Date('2030-01-01T00:00:00Z'),
    maxClicks: null,
    clicks: 3,
    fallbackUrl: null,
    redirectStatus: 302,
    cacheMaxAge: 0,
    forwardQuery: true,
    iosUrl: null,
    androidUrl: 'https://play.example.com/x',
    geo: { DE: 'https://example.de/' },
  };

  it('round-trips a link', () => {
    expect(linkCodec.decode(linkCodec.encode(link))).toEqual(link);
  });

  it.each([
    ['not JSON', 'not json'],
    ['a javascript: target', JSON.stringify({ ...link, expiresAt: null, url: 'javascript:alert(1)' })],
    ['a data: geo target', JSON.stringify({ ...link, expiresAt: null, geo: { DE: 'data:text/html,x' } })],
    ['credentials in a fallback', JSON.stringify({ ...link, expiresAt: null, fallbackUrl: 'https://u:p@example.com/' })],
    ['an unknown field', JSON.stringify({ ...link, expiresAt: null, extra: 1 })],
    ['a missing field', JSON.stringify({ ...link, expiresAt: null, url: undefined })],
    ['a status hop never answers', JSON.stringify({ ...link, expiresAt: null, redirectStatus: 200 })],
    ['a negative count', JSON.stringify({ ...link, expiresAt: null, clicks: -1 })],
  ])('refuses %s', (_, raw) => {
    expect(linkCodec.decode(raw)).toBeUndefined();
  });
});

describe('createCachedLookup: which workspace serves a host', () => {
  function lookup(options: { singleFlight: boolean }) {
    const reads: Array<{ host: string; answer: (owner: string | undefined) => void }> = [];
    const cached = createCachedLookup(
      {
        findLink: () => Promise.resolve(undefined),
        domainOwner: (host) => new Promise<string | undefined>((resolve) => reads.push({ host, answer: resolve })),
      },
      {
        config: loadConfig({}).cache,
        singleFlight: options.singleFlight,
        databaseTimeoutMs: 2000,
        logger: createLogger({ level: 'error', write: () => {} }),
        metrics: createMetrics(),
      },
    );
    return { cached, reads };
  }

  it('makes one read for many redirects that miss together, then answers from memory', async () => {
    const { cached, reads } = lookup({ singleFlight: true });
    const together = [cached.domainOwner('go.example'), cached.domainOwner('go.example'), cached.domainOwner('other.example')];
    expect(reads.map((r) => r.host)).toEqual(['go.example', 'other.example']);
    reads[0]!.answer('ws_1');
    reads[1]!.answer(undefined);
    expect(await Promise.all(together)).toEqual(['ws_1', 'ws_1', undefined]);
    expect([cached.domainOwner('go.example'), cached.domainOwner('other.example'), reads.length]).toEqual(['ws_1', undefined, 2]);
  });

  it('does not keep an answer read before the host changed', async () => {
    const { cached, reads } = lookup({ singleFlight: true });
    const before = cached.domainOwner('go.example');
    cached.invalidateHost('go.example');
    reads[0]!.answer('ws_old');
    expect(await before).toBe('ws_old');
    const after = cached.domainOwner('go.example');
    expect(reads).toHaveLength(2);
    reads[1]!.answer('ws_new');
    expect(await after).toBe('ws_new');
    expect(cached.domainOwner('go.example')).toBe('ws_new');
  });

  it('without single flight (workerd) each miss reads, and the answer is kept', async () => {
    const { cached, reads } = lookup({ singleFlight: false });
    const both = [cached.domainOwner('go.example'), cached.domainOwner('go.example')];
    expect(reads).toHaveLength(2);
    reads[0]!.answer('ws_1');
    reads[1]!.answer('ws_1');
    expect(await Promise.all(both)).toEqual(['ws_1', 'ws_1']);
    expect(cached.domainOwner('go.example')).toBe('ws_1');
  });
});
