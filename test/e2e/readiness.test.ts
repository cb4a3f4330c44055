// /readyz of hop on Node over a real sqld primary, a real redis-server (behind the Upstash REST stand-in) as the shared
// cache and the click queue (Redis Streams): ready with all three; with Redis killed, 503 naming the cache and the
// queue; with sqld hung (SIGSTOP), 503 naming the database within the probe's deadline; ready again once they are
// back. The metrics' queue gauges read the stream's backlog meanwhile.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSqld, type Sqld } from '../../src/cli/sqld.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { GENEROUS_RATE_LIMITS } from '../support/rate-limits.ts';
import { redisAvailable, startRedis, type RedisServer } from '../support/redis.ts';
import { sqldAvailable } from '../support/sqld.ts';
import { startUpstashRest, type UpstashRest } from '../support/upstash-rest.ts';

const run = promisify(execFile);
const ADMIN = 'c'.repeat(40);
const READY_TIMEOUT_MS = 500;

interface Ready {
  status: number;
  body: { status?: string; checks?: Record<string, string>; detail?: string };
}

describe.runIf(sqldAvailable() && redisAvailable())('readiness of the database, the shared cache and the queue', () => {
  let dir: string;
  let sqld: Sqld;
  let redis: RedisServer;
  let rest: UpstashRest;
  let hop: Running;
  let base: string;
  let metricsBase: string;

  const ready = async (): Promise<Ready> => {
    const started = Date.now();
    const res = await fetch(`${base}/readyz`);
    const body = (await res.json()) as Ready['body'];
    // Whatever failed, the probe answers within its deadline (and some room for a busy machine).
    expect(Date.now() - started).toBeLessThan(READY_TIMEOUT_MS + 1500);
    return { status: res.status, body };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hop-ready-'));
    sqld = await startSqld({ dir: join(dir, 'sqld') });
    await run(process.execPath, ['src/cli/hop.ts', 'migrate'], { env: { ...process.env, HOP_DATABASE_URL: sqld.url } });
    redis = await startRedis();
    rest = await startUpstashRest({ redisPort: redis.port });
    const port = await freePort();
    const metricsPort = await freePort();
    base = `http://127.0.0.1:${port}`;
    metricsBase = `http://127.0.0.1:${metricsPort}`;
    hop = await startProcess(
      process.execPath,
      ['src/runtimes/node.ts'],
      {
        PORT: String(port),
        HOP_DATABASE_URL: sqld.url,
        HOP_ADMIN_TOKEN: ADMIN,
        HOP_LOG_LEVEL: 'error',
        HOP_SHUTDOWN_DELAY_MS: '0',
        HOP_READY_TIMEOUT_MS: String(READY_TIMEOUT_MS),
        HOP_CACHE: 'redis',
        HOP_QUEUE: 'redis',
        HOP_REDIS_URL: rest.url,
        HOP_REDIS_TOKEN: rest.token,
        HOP_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
        ...GENEROUS_RATE_LIMITS,
      },
      base,
      30_000,
    );
  });

  afterAll(async () => {
    sqld?.signal('SIGCONT');
    await hop?.stop();
    await rest?.close();
    await redis?.stop();
    await sqld?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is ready when all three answer, and names each that does not', async () => {
    expect(await ready()).toEqual({ status: 200, body: { status: 'ready', checks: { database: 'ok', cache: 'ok', queue: 'ok' } } });
    const metrics = await (await fetch(`${metricsBase}/metrics`)).text();
    expect(metrics).toMatch(/^hop_click_queue_depth\{queue="redis_stream"\} 0$/m);

    await redis.kill();
    const down = await ready();
    expect(down.status).toBe(503);
    expect(down.body.detail).toBe('Not ready: cache failed; queue failed.');
    await redis.restart();
    expect((await ready()).status).toBe(200);

    sqld.signal('SIGSTOP');
    try {
      const hung = await ready();
      expect(hung.status).toBe(503);
      expect(hung.body.detail).toBe(`Not ready: database did not answer within ${READY_TIMEOUT_MS} ms.`);
    } finally {
      sqld.signal('SIGCONT');
    }
    for (let i = 0; i < 50 && (await ready()).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await ready()).status).toBe(200);
  });
});
