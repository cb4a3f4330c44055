/**
 * The rate-limit store in Upstash Redis (the client of src/platform/redis.ts): every process sharing the database
 * shares the counts. One script call per request consults all its counters atomically: INCRBY (or GET for a read),
 * and the window's expiry set when it starts, so a key disappears with its window.
 *
 * Keys are `hop:rl:{<hmac>}:<policy>`: the counted key (a client's address, an API key's id) only as an HMAC-SHA-256
 * under a configured secret, so Redis never holds an address in the clear; the braces keep one client's counters
 * in one slot of a cluster.
 */
import type { Redis } from '@upstash/redis';
import { verdictOf, type RateLimitStore } from './ratelimit.ts';

// ARGV holds (cost, window in ms) per key. PTTL is -1 only for a key this call created (or one left without expiry).
const SCRIPT = `
local out = {}
for i = 1, #KEYS do
  local cost = tonumber(ARGV[i * 2 - 1])
  local window = tonumber(ARGV[i * 2])
  local used
  if cost > 0 then
    used = redis.call('INCRBY', KEYS[i], cost)
  elseif cost < 0 then
    used = tonumber(redis.call('GET', KEYS[i]) or '0')
    if used > 0 then used = redis.call('DECRBY', KEYS[i], -cost) end
  else
    used = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl == -1 then
    redis.call('PEXPIRE', KEYS[i], window)
    ttl = window
  elseif ttl == -2 then
    ttl = window
  end
  out[i * 2 - 1] = used
  out[i * 2] = ttl
end
return out`;

export interface RedisRateLimitOptions {
  redis: Redis;
  /** The HMAC secret (HOP_RATE_LIMIT_SALT). */
  salt: string;
  prefix?: string;
}

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');

export function createRedisRateLimitStore({ redis, salt, prefix = 'hop:rl:' }: RedisRateLimitOptions): RateLimitStore {
  const script = redis.createScript<number[]>(SCRIPT);
  let hmacKey: Promise<CryptoKey> | undefined;
  async function hashed(key: string) {
    hmacKey ??= crypto.subtle.importKey('raw', new TextEncoder().encode(salt), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
    ]);
    const mac = await crypto.subtle.sign('HMAC', await hmacKey, new TextEncoder().encode(key));
    return base64url(new Uint8Array(mac, 0, 16));
  }

  return {
    kind: 'redis',
    refunds: true,
    async take(takes) {
      const keys: string[] = [];
      const args: string[] = [];
      for (const t of takes) {
        keys.push(`${prefix}{${await hashed(t.key)}}:${t.policy.name}`);
        args.push(String(t.cost), String(t.policy.windowS * 1000));
      }
      const reply = await script.exec(keys, args);
      if (!Array.isArray(reply) || reply.length !== takes.length * 2) {
        throw new Error(`rate-limit script: unexpected reply ${JSON.stringify(reply).slice(0, 100)}`);
      }
      return takes.map((t, i) => verdictOf(t, Number(reply[i * 2]), Number(reply[i * 2 + 1])));
    },
  };
}
