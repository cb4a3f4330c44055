// The pieces of rate limiting that need no server: the in-process store's windows and bounds, the RateLimit fields,
// and the client address's counter key.
import { describe, expect, it } from 'vitest';
import { addressKey, clientKey } from '../../src/http/client-ip.ts';
import { rateLimitHeaders } from '../../src/http/middleware/rate-limit.ts';
import { createMemoryRateLimitStore } from '../../src/platform/ratelimit/memory.ts';
import type { RatePolicy, RateVerdict } from '../../src/platform/ratelimit/ratelimit.ts';

const perMinute: RatePolicy = { name: 'p', limit: 2, windowS: 60 };
const T0 = 1_700_000_000_000;

describe('the in-process store', () => {
  it('answers synchronously, counts with cost 1 and only reads with cost 0', () => {
    const store = createMemoryRateLimitStore();
    const read = () => store.take([{ policy: perMinute, key: 'a', cost: 0 }], T0) as RateVerdict[];
    const hit = (now = T0) => store.take([{ policy: perMinute, key: 'a', cost: 1 }], now) as RateVerdict[];
    expect(read()).toEqual([{ policy: perMinute, allowed: true, remaining: 2, resetS: 60, used: 0 }]);
    expect(hit()).toEqual([{ policy: perMinute, allowed: true, remaining: 1, resetS: 60, used: 1 }]);
    expect(hit(T0 + 1500)).toEqual([{ policy: perMinute, allowed: true, remaining: 0, resetS: 59, used: 2 }]);
    expect(read()).toEqual([{ policy: perMinute, allowed: false, remaining: 0, resetS: 60, used: 2 }]);
    expect(hit(T0 + 59_001)[0]).toMatchObject({ allowed: false, remaining: 0, resetS: 1 });
    // The window started at T0 ends at T0 + 60 s, and a new one starts with the next request.
    expect(hit(T0 + 60_000)[0]).toMatchObject({ allowed: true, remaining: 1, resetS: 60 });
  });

  it('gives a place back with cost -1, never below zero, and nothing once the window has passed', () => {
    const store = createMemoryRateLimitStore();
    const take = (cost: -1 | 0 | 1, now = T0) => (store.take([{ policy: perMinute, key: 'a', cost }], now) as RateVerdict[])[0]!;
    expect(store.refunds).toBe(true);
    take(1);
    take(1);
    expect(take(-1).used).toBe(1);
    expect(take(-1).used).toBe(0);
    expect(take(-1).used).toBe(0);
    take(1);
    expect(take(-1, T0 + 60_000).used).toBe(0);
    expect(take(1, T0 + 60_000)).toMatchObject({ used: 1, allowed: true });
  });

  it('keeps policies and keys apart, and consults several counters in one call', () => {
    const store = createMemoryRateLimitStore();
    const other: RatePolicy = { name: 'q', limit: 1, windowS: 10 };
    const verdicts = store.take(
      [
        { policy: perMinute, key: 'a', cost: 1 },
        { policy: other, key: 'a', cost: 1 },
        { policy: other, key: 'a', cost: 0 },
        { policy: perMinute, key: 'b', cost: 0 },
      ],
      T0,
    ) as RateVerdict[];
    expect(verdicts.map((v) => [v.policy.name, v.allowed, v.remaining, v.resetS])).toEqual([
      ['p', true, 1, 60],
      ['q', true, 0, 10],
      ['q', false, 0, 10],
      ['p', true, 2, 60],
    ]);
  });

  it('holds at most maxKeys counters per policy, dropping the oldest window first', () => {
    const store = createMemoryRateLimitStore({ maxKeys: 3 });
    const once: RatePolicy = { name: 'once', limit: 1, windowS: 60 };
    const hit = (key: string, now = T0) => (store.take([{ policy: once, key, cost: 1 }], now) as RateVerdict[])[0]!.allowed;
    for (const key of ['a', 'b', 'c']) expect(hit(key)).toBe(true);
    expect([hit('a'), hit('b'), hit('c')]).toEqual([false, false, false]);
    // A fourth client pushes out the oldest counter ('a'), which starts afresh; 'b' and 'c' are still counted.
    expect(hit('d')).toBe(true);
    expect([hit('b'), hit('c'), hit('d')]).toEqual([false, false, false]);
    expect(hit('a')).toBe(true);
  });

  it('sweeps expired windows as time passes, without a timer', () => {
    const store = createMemoryRateLimitStore({ maxKeys: 2 });
    const once: RatePolicy = { name: 'once', limit: 1, windowS: 1 };
    const hit = (key: string, now: number) => (store.take([{ policy: once, key, cost: 1 }], now) as RateVerdict[])[0]!.allowed;
    expect([hit('a', T0), hit('b', T0)]).toEqual([true, true]);
    // One second later both windows have ended: the sweep empties the map, so neither new key evicts a live one.
    expect([hit('c', T0 + 1000), hit('d', T0 + 1000), hit('c', T0 + 1500), hit('d', T0 + 1500)]).toEqual([true, true, false, false]);
  });
});

describe('the RateLimit fields (draft-ietf-httpapi-ratelimit-headers)', () => {
  const policy: RatePolicy = { name: 'api', limit: 600, windowS: 60 };
  it('announce the policy and the count, and Retry-After only on a refusal', () => {
    expect(rateLimitHeaders({ policy, allowed: true, remaining: 598, resetS: 42 })).toEqual({
      'ratelimit-policy': '"api";q=600;w=60',
      ratelimit: '"api";r=598;t=42',
    });
    expect(rateLimitHeaders({ policy, allowed: false, remaining: 0, resetS: 7 })).toEqual({
      'ratelimit-policy': '"api";q=600;w=60',
      ratelimit: '"api";r=0;t=7',
      'retry-after': '7',
    });
  });

  it('leave the count out when the store cannot tell, and take the window for Retry-After', () => {
    expect(rateLimitHeaders({ policy, allowed: true, remaining: undefined, resetS: undefined })).toEqual({
      'ratelimit-policy': '"api";q=600;w=60',
    });
    expect(rateLimitHeaders({ policy, allowed: false, remaining: undefined, resetS: undefined })).toEqual({
      'ratelimit-policy': '"api";q=600;w=60',
      ratelimit: '"api";r=0;t=60',
      'retry-after': '60',
    });
  });
});

describe('the client address', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    [' 192.0.2.1 ', '192.0.2.1'],
    ['192.0.2.1:51234', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:c000:0201', '192.0.2.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['[2001:db8:aa:bb::1]:443', '2001:db8:aa:bb::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
  ])('keys %j as %j', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });

  it.each(['', 'localhost', '256.1.1.1', '1.2.3', '01.2.3.4x', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::1', 'g::1', '::ffff:1.2.3'])(
    'is no address: %j',
    (address) => {
      expect(addressKey(address)).toBeUndefined();
    },
  );

  it('takes the right-most entry of the trusted header, else the runtime address, else unknown', () => {
    expect(clientKey('198.51.100.1, 203.0.113.9', '127.0.0.1')).toBe('203.0.113.9');
    expect(clientKey('203.0.113.9, junk', '127.0.0.1')).toBe('127.0.0.1');
    expect(clientKey(undefined, '::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(clientKey(null, undefined)).toBe('unknown');
    expect(clientKey('junk', 'junk')).toBe('unknown');
  });
});
