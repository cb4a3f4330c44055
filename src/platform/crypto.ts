/**
 * Ids, secrets and hashes from Web Crypto only: time-ordered ids (UUIDv7), API keys and slugs drawn from
 * `crypto.getRandomValues`, SHA-256 digests, and a constant-time comparison.
 */
import { V7Generator } from 'uuidv7';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// Every click gets an id: the library's default source asks Web Crypto for 32 bytes at a time, and at redirect
// rates those calls cost more than the ids. 4 KiB per call instead; filled on first use, never at import (Workers
// forbid randomness outside a request).
const random = {
  buffer: new Uint32Array(1024),
  cursor: 1024,
  nextUint32(): number {
    if (this.cursor === this.buffer.length) {
      crypto.getRandomValues(this.buffer);
      this.cursor = 0;
    }
    return this.buffer[this.cursor++]!;
  },
};
const ids = new V7Generator(random);

/** A time-ordered opaque id such as `lnk_0193d1b8e7c47a5e9d0a4f4c2b3e8f10`. */
export function newId(prefix: string): string {
  return `${prefix}_${ids.generate().toHex()}`;
}

/**
 * `length` characters of base62, each drawn uniformly from a cryptographic source
 * (rejection sampling: bytes >= 248 are discarded so that no character is more likely than another).
 */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    // getRandomValues fills at most 64 KiB per call.
    const bytes = crypto.getRandomValues(new Uint8Array(Math.min(length * 2, 65536)));
    for (const b of bytes) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** 43 base62 characters carry 256 bits, the 32 random bytes PRODUCT.md asks of an API key. */
export const API_KEY_RANDOM_LENGTH = 43;
export const API_KEY_PATTERN = /^hop_[0-9A-Za-z]{43}$/;

export function newApiKey(): string {
  return `hop_${randomBase62(API_KEY_RANDOM_LENGTH)}`;
}

export async function sha256Hex(input: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(input));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Compares two secrets without leaking where they differ (both are hashed first, so lengths match). */
export async function timingSafeEqual(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([sha256Hex(a), sha256Hex(b)]);
  let diff = 0;
  for (let i = 0; i < ha.length; i++) diff |= ha.charCodeAt(i) ^ hb.charCodeAt(i);
  return diff === 0;
}
