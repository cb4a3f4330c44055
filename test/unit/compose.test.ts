// deploy/compose.yaml, checked without a container engine: the services the stack needs, one image for every hop
// role with the right command, references between services that resolve, a configuration that hop's own schema
// accepts for each role, and a Prometheus configuration that scrapes every hop process with the rules of deploy/prometheus.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, loadServerConfig } from '../../src/config.ts';

const DEPLOY = new URL('../../deploy/', import.meta.url).pathname;

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: string[] | Record<string, { condition: string }>;
  volumes?: string[];
  read_only?: boolean;
  init?: boolean;
  healthcheck?: { disable?: boolean };
}
const compose = parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const { services } = compose;
const HOP = { 'redirect-1': 'redirect', 'redirect-2': 'redirect', api: 'api' } as const;

describe('deploy/compose.yaml', () => {
  it('has the gateway, two redirects, the API, the consumer, sqld primary and replica, Redis and its REST front, Prometheus', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['api', 'consumer', 'gateway', 'init', 'prometheus', 'redirect-1', 'redirect-2', 'redis', 'redis-rest', 'sqld-primary', 'sqld-replica'].sort(),
    );
    expect(services.gateway!.volumes).toContain('./gateway/Caddyfile:/etc/caddy/Caddyfile:ro');
    expect(services['sqld-replica']!.environment!.SQLD_PRIMARY_URL).toBe('http://sqld-primary:5001');
  });

  it('runs every hop role from the one image of deploy/Dockerfile, read-only, with an init', () => {
    for (const name of ['redirect-1', 'redirect-2', 'api', 'consumer', 'init']) {
      const s = services[name]!;
      expect(s.image, name).toBe('localhost/hop:compose');
      expect(s.build, name).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
      expect(s.read_only, name).toBe(true);
    }
    for (const [name, role] of Object.entries(HOP)) {
      expect(services[name]!.command).toEqual(['serve', '--role', role]);
      expect(services[name]!.init).toBe(true);
    }
    expect(services.consumer!.command).toEqual(['consume']);
    expect(services.consumer!.healthcheck).toEqual({ disable: true });
    expect(services.init!.command).toEqual(['init']);
    expect(existsSync(join(DEPLOY, 'Dockerfile'))).toBe(true);
  });

  it('names only services that exist, and hop waits for the database to be migrated', () => {
    for (const [name, s] of Object.entries(services)) {
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const dep of deps) expect(Object.keys(services), `${name} depends on ${dep}`).toContain(dep);
    }
    for (const name of ['redirect-1', 'redirect-2', 'api', 'consumer']) {
      expect((services[name]!.depends_on as Record<string, { condition: string }>).init).toEqual({ condition: 'service_completed_successfully' });
    }
  });

  it('gives each role a configuration hop accepts: Redis queue and cache, redirects on the replica, the rest on the primary', () => {
    for (const name of ['redirect-1', 'redirect-2', 'api', 'consumer']) {
      const env = services[name]!.environment!;
      const config = loadServerConfig(env);
      expect(config.queue, name).toBe('redis');
      expect(config.databaseUrl, name).toBe(name.startsWith('redirect') ? 'http://sqld-replica:8080' : 'http://sqld-primary:8080');
      expect(new URL(env.HOP_REDIS_URL!).hostname).toBe('redis-rest');
      expect(env.HOP_REDIS_TOKEN).toBe(services['redis-rest']!.environment!.SRH_TOKEN);
    }
    expect(loadConfig(services.init!.environment!).databaseUrl).toBe('http://sqld-primary:8080');
  });

  it('scrapes /metrics of every hop process on its metrics port with Prometheus, with the rules of deploy/prometheus', () => {
    expect(services.prometheus!.volumes).toContain('./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    expect(services.prometheus!.volumes).toContain('./prometheus/rules:/etc/prometheus/rules:ro');
    const prom = parse(readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')) as {
      scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets)).sort();
    expect(targets).toEqual([...Object.keys(HOP), 'consumer'].map((n) => `${n}:9464`).sort());
    for (const name of [...Object.keys(HOP), 'consumer']) {
      const env = services[name]!.environment!;
      expect(loadServerConfig(env).metrics.listen).toEqual({ host: '0.0.0.0', port: 9464 });
    }
  });
});
