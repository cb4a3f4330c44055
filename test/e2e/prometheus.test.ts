// A real Prometheus (Debian's package) against a running hop on Node: the scrape job of deploy/prometheus/prometheus.yml
// pointed at hop's metrics listener (HOP_METRICS_ADDR), another at the main port with a bearer token read from a file
// (HOP_METRICS_TOKEN), every rule of deploy/prometheus/rules loaded, 1 s scrape and evaluation. After redirects
// through hop, the recording rules answer over Prometheus's HTTP API, every rule evaluates without error, and the
// metrics hop exports have the types test/support/hop-metrics.ts gives them.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createClickLink } from '../support/click-link.ts';
import { exportedSeries, HOP_METRICS, TARGET_LABELS } from '../support/hop-metrics.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { prometheusAvailable, startPrometheus, type PromSample, type RunningPrometheus } from '../support/prometheus.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const ADMIN = 'p'.repeat(40);
const TOKEN = 'metrics-token-for-the-test-0123456789';
const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';

const dirs: string[] = [];
const running: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  for (const r of running.reverse()) await r.stop();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const positive = (v: PromSample[]) => v.length > 0 && v.every((s) => Number(s.value[1]) > 0);
const valueOf = (v: PromSample[]) => Number(v[0]!.value[1]);

async function startHop(dir: string, env: Record<string, string>): Promise<{ hop: Running; port: number }> {
  const port = await freePort();
  const hop = await startProcess(
    'node',
    ['src/runtimes/node.ts'],
    { PORT: String(port), HOP_DATABASE_URL: `file:${join(dir, `hop-${port}.db`)}`, HOP_ADMIN_TOKEN: ADMIN, HOP_LOG_LEVEL: 'warn', HOP_SHUTDOWN_DELAY_MS: '0',
      // Every request comes from 127.0.0.1: the per-address quotas (unknown slugs: 60 a minute) are not this test's subject.
      HOP_RATE_LIMIT: 'off', ...env },
    `http://127.0.0.1:${port}`,
  );
  running.push(hop);
  return { hop, port };
}

describe.runIf(prometheusAvailable())('Prometheus against hop', () => {
  it('scrapes hop through the shipped configuration and answers the recording rules', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-prom-e2e-'));
    dirs.push(dir);
    // One hop with a metrics listener, one answering /metrics on its main port to a bearer token only.
    const metricsPort = await freePort();
    const { port } = await startHop(dir, { HOP_METRICS_ADDR: `127.0.0.1:${metricsPort}` });
    const { port: tokenPort } = await startHop(dir, { HOP_METRICS_TOKEN: TOKEN });
    const base = `http://127.0.0.1:${port}`;
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    writeFileSync(join(dir, 'wrong-token'), 'not-the-token\n');

    // The shipped configuration, its job pointed at these processes, its intervals shortened.
    const shipped = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: Record<string, unknown>[];
    };
    const job = shipped.scrape_configs.find((c) => c.job_name === 'hop')!;
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: shipped.rule_files.map((f) => join(ROOT, 'deploy/prometheus', f)),
      scrape_configs: [
        { ...job, static_configs: [{ targets: [`127.0.0.1:${metricsPort}`], labels: { role: 'all' } }] },
        {
          job_name: 'hop-token',
          metrics_path: '/metrics',
          authorization: { type: 'Bearer', credentials_file: join(dir, 'token') },
          static_configs: [{ targets: [`127.0.0.1:${tokenPort}`] }],
        },
        {
          job_name: 'hop-wrong-token',
          metrics_path: '/metrics',
          authorization: { type: 'Bearer', credentials_file: join(dir, 'wrong-token') },
          static_configs: [{ targets: [`127.0.0.1:${tokenPort}`] }],
        },
      ],
    };
    const prom: RunningPrometheus = await startPrometheus(stringify(config));
    running.push(prom);

    await prom.waitFor('up{job="hop"} == 1', (v) => v.length === 1);
    await prom.waitFor('up{job="hop-token"} == 1', (v) => v.length === 1);
    // A wrong token is refused, so that target is down: the token is what lets Prometheus in.
    await prom.waitFor('up{job="hop-wrong-token"} == 0', (v) => v.length === 1);

    // Redirects through hop, a few every half second while Prometheus scrapes, so counters rise between scrapes (a
    // series that first appears already counting shows no increase); and an unknown slug each time (a good 404
    // answer, not an error of the SLO).
    const link = await createClickLink(base, ADMIN, 'p', BROWSER);
    const statuses: number[] = [];
    const unknown: number[] = [];
    const traffic = setInterval(() => {
      void link.visit(10).then((s) => statuses.push(...s));
      void fetch(`${base}/no-such-link`, { redirect: 'manual' }).then((r) => unknown.push(r.status));
    }, 500);
    try {
      // The redirect SLIs over 5 minutes: a rate of redirects, no 5xx, a share over 100 ms between 0 and 1.
      const rate = await prom.waitFor('hop:redirect_requests:rate5m{job="hop"}', positive);
      expect(rate).toHaveLength(1);
      expect(rate[0]!.metric).toEqual({ __name__: 'hop:redirect_requests:rate5m', job: 'hop' });
      expect(valueOf(await prom.waitFor('hop:redirect_error_ratio:rate5m{job="hop"}', (v) => v.length === 1))).toBe(0);
      const slow = valueOf(await prom.waitFor('hop:redirect_slow_ratio:rate5m{job="hop"}', (v) => v.length === 1));
      expect(slow).toBeGreaterThanOrEqual(0);
      expect(slow).toBeLessThan(1);
      // The per-route rate: the redirect counted under its route template, the 404 as 4xx.
      await prom.waitFor('hop:http_requests:rate5m{job="hop",route="/:slug",method="GET",status_class="3xx"}', positive);
      await prom.waitFor('hop:http_requests:rate5m{job="hop",route="/:slug",status_class="4xx"}', positive);
      // The link cache's lookups: the first visit missed, the others hit the in-process tier.
      await prom.waitFor('hop:cache_requests:rate5m{job="hop",cache="links",tier="memory",result="hit"}', positive);
      expect(valueOf(await prom.waitFor('hop:cache_hit_ratio:rate5m{job="hop",cache="links"}', positive))).toBeLessThanOrEqual(1);
      // Database reads timed, and clicks stored by the in-process consumer.
      await prom.waitFor('sum(hop:db_calls:rate5m{job="hop",outcome="ok"})', positive);
      await prom.waitFor('hop:clicks_ingested:rate5m{job="hop",result="stored"}', positive);
    } finally {
      clearInterval(traffic);
    }
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set([302]));
    expect(new Set(unknown)).toEqual(new Set([404]));

    // Every rule of the files, alerts included, loaded and evaluating against real series without error.
    const rules = (
      (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
        data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
      }
    ).data.groups.flatMap((g) => g.rules);
    const inFiles = readdirSync(join(ROOT, 'deploy/prometheus/rules')).flatMap(
      (f) => (parse(readFileSync(join(ROOT, 'deploy/prometheus/rules', f), 'utf8')) as { groups: { rules: unknown[] }[] }).groups.flatMap((g) => g.rules),
    );
    expect(rules).toHaveLength(inFiles.length);
    expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([]);

    // What hop exports, as Prometheus read it: each metric of test/support/hop-metrics.ts that a single Node process
    // serving redirects has, with the type that list gives it.
    const metadata = ((await (await fetch(`${prom.url}/api/v1/targets/metadata?match_target=${encodeURIComponent('{job="hop"}')}`)).json()) as {
      data: { metric: string; type: string }[];
    }).data;
    const types = new Map(metadata.map((m) => [m.metric, m.type]));
    const expected = Object.entries(HOP_METRICS).filter(([, spec]) => spec.always);
    expect(expected.length).toBeGreaterThanOrEqual(10);
    for (const [name, spec] of expected) expect(types.get(name), name).toBe(spec.type);
    for (const [name, spec] of Object.entries(HOP_METRICS)) if (types.has(name)) expect(types.get(name), name).toBe(spec.type);

    // And the labels of every series Prometheus holds for them are the list's (with the scrape's and `worker`).
    const exported = exportedSeries();
    const q = new URLSearchParams({ 'match[]': '{job="hop",__name__=~"hop_.+|process_.+|nodejs_.+"}' });
    const series = ((await (await fetch(`${prom.url}/api/v1/series?${q}`)).json()) as { data: Record<string, string>[] }).data;
    const listed = series.filter((s) => exported.has(s.__name__!));
    expect(listed.length).toBeGreaterThan(20);
    const stray = listed.flatMap(({ __name__: name, ...labels }) =>
      Object.keys(labels)
        .filter((l) => !exported.get(name!)!.includes(l) && !(TARGET_LABELS as readonly string[]).includes(l))
        .map((l) => `${name} has label ${l}`),
    );
    expect([...new Set(stray)]).toEqual([]);
  }, 120_000);
});
