// The container image (deploy/Dockerfile), built with podman from the local base (deploy/local-base.sh) and run with a
// read-only root filesystem: the README walkthrough and a click seen in the statistics against it, a non-root user,
// the click consumer role (`consume`, with a real Redis), the HEALTHCHECK, SIGTERM draining within the drain time, and
// the image's size. Slow (a base built once, then an
// image build): run by `npm run test:image` (vitest.image.config.ts), not by `npm test`; `.ci/run` runs both.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/process.ts';
import { redisAvailable, startRedis } from '../support/redis.ts';
import { startUpstashRest } from '../support/upstash-rest.ts';
import { runWalkthrough } from '../support/walkthrough.ts';

const exec = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const INSTALL_HINT = 'apt-get install -y podman buildah debootstrap fuse-overlayfs uidmap runc (Debian, as root)';
const BASE = 'localhost/hop-base:bookworm-node24';
const IMAGE = 'localhost/hop:image-test';
const NAME = `hop-image-test-${process.pid}`;
const KEY_LINE = /export HOP_KEY=(hop_[0-9A-Za-z]{43})/;
// HOP_SHUTDOWN_DELAY_MS (3 s by default) plus the server's 10 s deadline for requests in flight.
const DRAIN_MS = 13_000;

function podmanAvailable(): boolean {
  const missing = ['podman', 'debootstrap'].filter((bin) => !process.env.PATH?.split(':').some((dir) => existsSync(`${dir}/${bin}`)));
  if (!missing.length) return true;
  if (process.env.CI === 'true') throw new Error(`${missing.join(' and ')} required under CI=true: ${INSTALL_HINT}`);
  console.warn(`skipping the image test (${missing.join(', ')} missing): ${INSTALL_HINT}`);
  return false;
}

const env: Record<string, string | undefined> = { ...process.env };
const podman = async (...args: string[]) => (await exec('podman', args, { env, maxBuffer: 64 << 20, timeout: 900_000 })).stdout.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(podmanAvailable())('the container image', () => {
  let port: number;
  let base: string;
  let logs = '';

  beforeAll(async () => {
    // The script prints the podman configuration it wrote (runc, ulimits, storage) as `export A=... B=...`.
    const { stdout } = await exec('bash', [`${ROOT}deploy/local-base.sh`], { env, timeout: 900_000 });
    for (const [, k, v] of stdout.matchAll(/(CONTAINERS_[A-Z_]+)=(\S+)/g)) env[k!] = v!;
    // Behind this machine's TLS-intercepting egress the build's npm needs its CA bundle, passed as a build secret
    // (the host's bundle: harmless where nothing intercepts).
    const ca = [env.NODE_EXTRA_CA_CERTS, env.SSL_CERT_FILE, '/etc/ssl/certs/ca-certificates.crt'].find((f) => f && existsSync(f));
    await podman(
      'build', '--format', 'docker', '--network', 'host', '--build-arg', `BASE=${BASE}`,
      ...(ca ? ['--secret', `id=ca,src=${ca}`] : []),
      '-f', `${ROOT}deploy/Dockerfile`, '-t', IMAGE, ROOT,
    );
    base = BASE;
    port = await freePort();
    await podman(
      'run', '-d', '--name', NAME, '--read-only', '-p', `127.0.0.1:${port}:8787`,
      '-e', `HOP_BASE_URL=http://localhost:${port}`, IMAGE,
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`the container never became ready:\n${await podman('logs', NAME).catch(String)}`);
      await sleep(250);
    }
    logs = await podman('logs', NAME);
  }, 1_200_000);

  afterAll(async () => {
    await podman('rm', '-f', '-v', NAME).catch(() => undefined);
  });

  it('runs as the numeric non-root user 10001, on a read-only root filesystem', async () => {
    expect(await podman('exec', NAME, 'id', '-u')).toBe('10001');
    expect(await podman('inspect', '--format', '{{.Config.User}}', NAME)).toBe('10001:10001');
    expect(await podman('inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', NAME)).toBe('true');
    await expect(podman('exec', NAME, 'touch', '/app/written')).rejects.toThrow(/Read-only file system/);
  });

  it('prints the admin key once and walks the README against the container', async () => {
    const key = KEY_LINE.exec(logs)?.[1];
    expect(key, logs).toBeDefined();
    const stdout = await runWalkthrough(`http://localhost:${port}`, key!);
    expect(stdout).toContain('"name":"default"');
  });

  it('stores a followed link\'s click and shows it in the statistics', async () => {
    const key = KEY_LINE.exec(logs)![1]!;
    const auth = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
    const created = await fetch(`http://127.0.0.1:${port}/v1/links`, {
      method: 'POST', headers: auth, body: JSON.stringify({ url: 'https://example.com/image', slug: 'image-stats' }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const follow = await fetch(`http://127.0.0.1:${port}/image-stats`, {
      redirect: 'manual',
      headers: { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36' },
    });
    expect(follow.status).toBe(302);
    expect(follow.headers.get('location')).toBe('https://example.com/image');
    let totals = { humans: 0, bots: 0 };
    for (let i = 0; i < 60 && totals.humans === 0; i++) {
      await sleep(500);
      const stats = await fetch(`http://127.0.0.1:${port}/v1/links/${id}/stats`, { headers: auth });
      expect(stats.status).toBe(200);
      totals = ((await stats.json()) as { totals: typeof totals }).totals;
    }
    expect(totals).toEqual({ humans: 1, bots: 0 });
  });

  it.runIf(redisAvailable())('runs the click consumer (`consume`) from the same image: it stores the clicks a server produced, and drains on SIGTERM', async () => {
    // A server that only produces (HOP_CLICK_CONSUMER=off) and a `hop consume` container, both on the host's network
    // to reach a real redis-server behind the REST stand-in on loopback, sharing one database file.
    const redis = await startRedis();
    const rest = await startUpstashRest({ redisPort: redis.port });
    const dir = mkdtempSync(join(tmpdir(), 'hop-image-'));
    chownSync(dir, 10001, 10001);
    const serverPort = await freePort();
    const names = [`${NAME}-producer`, `${NAME}-consumer`];
    const common = [
      '--network', 'host', '--read-only', '-v', `${dir}:/data`, '-e', 'HOP_QUEUE=redis', '-e', `HOP_REDIS_URL=${rest.url}`,
      '-e', `HOP_REDIS_TOKEN=${rest.token}`, '-e', 'HOP_CLICK_CONSUMER=off', '-e', 'HOST=127.0.0.1',
    ];
    try {
      await podman('run', '-d', '--name', names[0]!, ...common, '-e', `PORT=${serverPort}`, '-e', `HOP_BASE_URL=http://localhost:${serverPort}`, IMAGE);
      const base = `http://127.0.0.1:${serverPort}`;
      const deadline = Date.now() + 60_000;
      while (!(await fetch(`${base}/readyz`).then((r) => r.ok, () => false))) {
        if (Date.now() > deadline) throw new Error(`the producer never became ready:\n${await podman('logs', names[0]!).catch(String)}`);
        await sleep(250);
      }
      await podman('run', '-d', '--name', names[1]!, ...common, IMAGE, 'consume');
      const key = KEY_LINE.exec(await podman('logs', names[0]!))![1]!;
      const auth = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
      const created = await fetch(`${base}/v1/links`, { method: 'POST', headers: auth, body: JSON.stringify({ url: 'https://example.com/consumed' }) });
      expect(created.status).toBe(201);
      const link = (await created.json()) as { id: string; slug: string };
      const browser = { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36' };
      for (let i = 0; i < 3; i++) expect((await fetch(`${base}/${link.slug}`, { redirect: 'manual', headers: browser })).status).toBe(302);
      let humans = 0;
      for (let i = 0; i < 60 && humans < 3; i++) {
        await sleep(500);
        const stats = await fetch(`${base}/v1/links/${link.id}/stats`, { headers: auth });
        humans = ((await stats.json()) as { totals: { humans: number } }).totals.humans;
      }
      expect(humans).toBe(3);
      expect(await podman('logs', names[1]!)).toContain('"msg":"consuming"');
      const started = Date.now();
      await podman('stop', '-t', '30', names[1]!);
      expect(await podman('inspect', '--format', '{{.State.ExitCode}}', names[1]!)).toBe('0');
      expect(Date.now() - started).toBeLessThan(DRAIN_MS);
      expect(await podman('logs', names[1]!)).toMatch(/"msg":"shutting down","signal":"SIGTERM"/);
    } finally {
      for (const name of names) await podman('rm', '-f', '-v', name).catch(() => undefined);
      await rest.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('declares a HEALTHCHECK on /livez that passes', async () => {
    expect(await podman('image', 'inspect', '--format', '{{json .HealthCheck.Test}}', IMAGE)).toContain('/livez');
    // `podman healthcheck run` runs the image's check inside the container and exits 0 when it passes.
    await expect(podman('healthcheck', 'run', NAME)).resolves.toBeDefined();
  });

  it('reports its size: the hop layers over the base stay under 80 MB', async () => {
    const size = Number(await podman('image', 'inspect', '--format', '{{.Size}}', IMAGE));
    const baseSize = Number(await podman('image', 'inspect', '--format', '{{.Size}}', base));
    const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;
    console.log(`image ${IMAGE}: ${mb(size)}, of which the base ${base} ${mb(baseSize)} and hop ${mb(size - baseSize)}`);
    expect(size - baseSize).toBeGreaterThan(10e6);
    expect(size - baseSize).toBeLessThan(80e6);
  });

  it('drains on SIGTERM and exits 0 within the drain time (hop as PID 1 handles the signal itself)', async () => {
    const started = Date.now();
    // podman stop sends STOPSIGNAL (SIGTERM) and SIGKILL only after -t seconds: 137 would mean the signal was ignored,
    // 143 that the default disposition killed it (no handler); 0 is hop's own drain finishing.
    await podman('stop', '-t', '30', NAME);
    const elapsed = Date.now() - started;
    expect(await podman('inspect', '--format', '{{.State.ExitCode}}', NAME)).toBe('0');
    expect(elapsed).toBeLessThan(DRAIN_MS);
    const after = await podman('logs', NAME);
    expect(after).toMatch(/"msg":"shutting down","signal":"SIGTERM","delayMs":3000/);
    console.log(`stopped by SIGTERM in ${elapsed} ms (exit code 0)`);
  });

  it('with --init, a SIGTERM sent while it is still starting stops it at once too', async () => {
    // Before hop installs its handlers, PID 1 would ignore SIGTERM and wait for SIGKILL; behind an init (catatonit
    // here, tini under docker) the signal reaches a process that is not PID 1, whose default action is to exit.
    const name = `${NAME}-init`;
    try {
      await podman('run', '-d', '--init', '--name', name, '--read-only', IMAGE);
      const started = Date.now();
      await podman('stop', '-t', '30', name);
      const elapsed = Date.now() - started;
      // 143 (128 + SIGTERM): killed by the signal before its handler existed; 0: it had started and drained.
      expect(['0', '143']).toContain(await podman('inspect', '--format', '{{.State.ExitCode}}', name));
      expect(elapsed).toBeLessThan(DRAIN_MS);
    } finally {
      await podman('rm', '-f', '-v', name).catch(() => undefined);
    }
  });
});
