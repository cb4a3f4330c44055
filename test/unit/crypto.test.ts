// Ids, API keys, hashes and constant-time comparison from src/platform/crypto.ts, and the list cursor codec.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { decodeCursor, encodeCursor } from '../../src/modules/links/links.service.ts';
import { API_KEY_PATTERN, newApiKey, newId, randomBase62, sha256Hex, timingSafeEqual } from '../../src/platform/crypto.ts';

describe('newApiKey', () => {
  it('is hop_ followed by 43 base62 characters', () => {
    for (let i = 0; i < 50; i++) {
      const key = newApiKey();
      expect(key).toMatch(/^hop_[0-9A-Za-z]{43}$/);
      expect(key).toMatch(API_KEY_PATTERN);
    }
  });

  it('never repeats in 1,000 keys', () => {
    const keys = new Set(Array.from({ length: 1000 }, () => newApiKey()));
    expect(keys.size).toBe(1000);
  });

  it('uses the whole base62 alphabet', () => {
    const seen = new Set(Array.from({ length: 200 }, () => newApiKey().slice(4)).join(''));
    expect(seen.size).toBe(62);
  });
});

describe('randomBase62', () => {
  it('gives exactly the asked length of base62', () => {
    for (const length of [1, 7, 43, 100]) expect(randomBase62(length)).toMatch(new RegExp(`^[0-9A-Za-z]{${length}}$`));
  });

  it('is roughly uniform over the alphabet', () => {
    const counts = new Map<string, number>();
    const sample = Array.from({ length: 62 }, () => randomBase62(1000)).join('');
    for (const ch of sample) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 1000 expected per character; a biased modulo (256 % 62) would lift the first 8 characters by ~25%.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(820);
      expect(n).toBeLessThan(1180);
    }
  });
});

describe('newId', () => {
  it('is the prefix, an underscore and 32 hex digits of a UUIDv7', () => {
    const id = newId('lnk');
    expect(id).toMatch(/^lnk_[0-9a-f]{32}$/);
    expect(id[4 + 12]).toBe('7');
    expect(newId('ws')).toMatch(/^ws_[0-9a-f]{32}$/);
  });

  it('sorts in creation order, also within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => newId('lnk'));
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()).toEqual(ids);
  });

  it('carries the creation time', () => {
    const before = Date.now();
    const id = newId('lnk');
    const ms = parseInt(id.slice(4, 16), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now());
  });
});

describe('sha256Hex', () => {
  it('matches the known vectors', async () => {
    expect(await sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('hashes UTF-8', async () => {
    expect(await sha256Hex('\u00e9')).toBe('4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c');
  });
});

describe('timingSafeEqual', () => {
  it('is true for equal strings and false otherwise', async () => {
    expect(await timingSafeEqual('secret-token', 'secret-token')).toBe(true);
    expect(await timingSafeEqual('secret-token', 'secret-tokeN')).toBe(false);
    expect(await timingSafeEqual('secret-token', 'secret-token-longer')).toBe(false);
    expect(await timingSafeEqual('', '')).toBe(true);
    expect(await timingSafeEqual('', 'x')).toBe(false);
  });
});

describe('encodeCursor / decodeCursor', () => {
  const row = { createdAt: new Date('2027-03-01T12:34:56.789Z'), id: 'lnk_0193d1b8e7c47a5e9d0a4f4c2b3e8f10' };

  it('round-trips (createdAt, id) through a URL-safe string', () => {
    const cursor = encodeCursor(row);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual(row);
  });

  it('round-trips the epoch and far-future times', () => {
    for (const createdAt of [new Date(0), new Date('2999-12-31T23:59:59.999Z')]) {
      expect(decodeCursor(encodeCursor({ createdAt, id: 'lnk_a' }))).toEqual({ createdAt, id: 'lnk_a' });
    }
  });

  it.each([
    ['not base64', '!!!'],
    ['base64 of the wrong shape', btoa('hello world')],
    ['a negative time', btoa('-5.lnk_a')],
    ['an id with SQL in it', btoa("1.lnk_a' or 1=1 --")],
    ['a missing id', btoa('1700000000000.')],
    ['a missing time', btoa('.lnk_a')],
    ['an empty string', ''],
  ])('refuses %s with AppError validation naming cursor', (_what, cursor) => {
    let thrown: unknown;
    try {
      decodeCursor(cursor);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(AppError);
    const err = thrown as AppError;
    expect(err.code).toBe('validation');
    // The service names the field; the list route places it in the query string (test/integration/links.test.ts).
    expect(err.errors).toEqual([{ field: 'cursor', message: 'is not a cursor this API returned' }]);
  });
});
