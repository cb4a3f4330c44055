// The Upstash REST stand-in (test/support/upstash-rest.ts) against a real redis-server, driven by @upstash/redis
// exactly as hop drives Upstash: replies decoded from base64 at every depth (stream replies nest), pipelines and
// transactions, Redis errors as errors, a wrong token refused, and a killed Redis reported at once, not waited on.
import { Redis } from '@upstash/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisAvailable, startRedis, type RedisServer } from '../support/redis.ts';
import { startUpstashRest, type UpstashRest } from '../support/upstash-rest.ts';

describe.runIf(redisAvailable())('Upstash REST stand-in', () => {
  let server: RedisServer;
  let rest: UpstashRest;
  let redis: Redis;

  beforeAll(async () => {
    server = await startRedis();
    rest = await startUpstashRest({ redisPort: server.port });
    redis = new Redis({ url: rest.url, token: rest.token, enableTelemetry: false, retry: false });
  });
  afterAll(async () => {
    await rest?.close();
    await server?.stop();
  });

  it('answers single commands with base64-encoded strings that @upstash/redis decodes, numbers and nulls as they are', async () => {
    expect(await redis.set('greeting', 'héllo, wörld ✓')).toBe('OK');
    expect(await redis.get('greeting')).toBe('héllo, wörld ✓');
    expect(await redis.get('missing')).toBeNull();
    expect(await redis.incr('n')).toBe(1);
    expect(await redis.incrby('n', 41)).toBe(42);
    await redis.hset('h', { a: '1', b: 'two' });
    expect(await redis.hgetall('h')).toEqual({ a: 1, b: 'two' });

    // The raw wire: strings are base64 of their bytes, integers plain.
    const raw = await fetch(rest.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${rest.token}`, 'upstash-encoding': 'base64' },
      body: JSON.stringify(['MGET', 'greeting', 'missing', 'n']),
    });
    const body = (await raw.json()) as { result: unknown[] };
    expect(body.result).toEqual([Buffer.from('héllo, wörld ✓').toString('base64'), null, Buffer.from('42').toString('base64')]);
    const plain = await fetch(rest.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${rest.token}` },
      body: JSON.stringify(['INCR', 'n']),
    });
    expect(await plain.json()).toEqual({ result: 43 });
  });

  it('decodes the nested arrays of stream replies', async () => {
    const r = new Redis({ url: rest.url, token: rest.token, enableTelemetry: false, automaticDeserialization: false });
    expect(await r.xgroup('s', { type: 'CREATE', group: 'g', id: '0', options: { MKSTREAM: true } })).toBe('OK');
    const id = await r.xadd('s', '*', { m: '{"a":"ü"}', n: '7' });
    const read = (await r.xreadgroup('g', 'c1', 's', '>', { count: 10 })) as unknown;
    expect(read).toEqual([['s', [[id, ['m', '{"a":"ü"}', 'n', '7']]]]]);
    const pending = (await r.xpending('s', 'g', '-', '+', 10)) as unknown[][];
    expect(pending).toEqual([[id, 'c1', expect.any(Number), 1]]);
    const claimed = (await r.xautoclaim('s', 'g', 'c2', 0, '0-0', { count: 10 })) as unknown[];
    expect(claimed[0]).toBe('0-0');
    expect(claimed[1]).toEqual([[id, ['m', '{"a":"ü"}', 'n', '7']]]);
    expect(await r.xack('s', 'g', id)).toBe(1);
  });

  it('runs pipelines (errors per command) and MULTI/EXEC transactions', async () => {
    const p = redis.pipeline();
    p.set('p1', 'a');
    p.incr('p1'); // not an integer: an error for this command only
    p.get('p1');
    const results = await p.exec({ keepErrors: true });
    expect(results.map((r) => r.error ?? r.result)).toEqual(['OK', 'ERR value is not an integer or out of range', 'a']);
    await expect(redis.pipeline().set('p2', 'x').incr('p2').exec()).rejects.toThrow(/not an integer/);

    const tx = redis.multi();
    tx.set('t1', '1');
    tx.incr('t1');
    tx.get('t1');
    expect(await tx.exec()).toEqual(['OK', 2, 2]);
    expect(rest.stats().requests['/multi-exec']).toBe(1);
    // A command refused while queueing discards the whole transaction.
    const aborted = await fetch(`${rest.url}/multi-exec`, {
      method: 'POST',
      headers: { authorization: `Bearer ${rest.token}` },
      body: JSON.stringify([['SET', 't2', 'x'], ['SET', 't2']]),
    });
    expect(aborted.status).toBe(400);
    expect(((await aborted.json()) as { error: string }).error).toMatch(/EXECABORT.*wrong number of arguments/);
    expect(await redis.get('t2')).toBeNull();
  });

  it('reports a Redis error as an error, refuses a wrong token, and answers malformed requests 400', async () => {
    await redis.set('str', 'x');
    await expect(redis.lpush('str', 'y')).rejects.toThrow(/WRONGTYPE/);
    const wrong = new Redis({ url: rest.url, token: 'nope', enableTelemetry: false, retry: false });
    await expect(wrong.get('str')).rejects.toThrow(/Unauthorized/);
    const noAuth = await fetch(`${rest.url}/pipeline`, { method: 'POST', body: JSON.stringify([['GET', 'str']]) });
    expect(noAuth.status).toBe(401);
    const bad = await fetch(rest.url, { method: 'POST', headers: { authorization: `Bearer ${rest.token}` }, body: '{"x":1}' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/command/);
  });

  it('keeps serving other commands while a blocking read waits', async () => {
    const r = new Redis({ url: rest.url, token: rest.token, enableTelemetry: false, automaticDeserialization: false });
    await r.xgroup('b', { type: 'CREATE', group: 'g', id: '$', options: { MKSTREAM: true } });
    const started = Date.now();
    const blocked = r.xreadgroup('g', 'c', 'b', '>', { count: 1, blockMS: 800 });
    expect(await r.ping()).toBe('PONG');
    expect(Date.now() - started).toBeLessThan(500);
    expect(await blocked).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(750);
  });

  it('answers errors at once while redis-server is down, and serves again once it is back', async () => {
    await server.kill();
    const started = Date.now();
    await expect(redis.get('greeting')).rejects.toThrow(/Unable to connect to the Redis server/);
    await expect(redis.pipeline().get('a').exec()).rejects.toThrow(/Unable to connect/);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(rest.stats().unavailable).toBe(2);
    await server.restart();
    let value: unknown = 'unreachable';
    for (let i = 0; i < 50 && value === 'unreachable'; i++) {
      value = await redis.get('greeting').catch(() => 'unreachable');
      if (value === 'unreachable') await new Promise((r) => setTimeout(r, 50));
    }
    // No persistence: the restarted server is empty.
    expect(value).toBeNull();
  });
});
