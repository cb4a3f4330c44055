// The Kubernetes manifests (deploy/k8s): every overlay rendered by `kubectl kustomize` and validated offline against
// the Kubernetes, Gateway API and KEDA schemas (test/support/k8s-validate.ts); typos planted in a copy must fail it.
// Then hop's own rules: a restrictive securityContext, probes on the HTTP roles, requests and limits, a scaler and a
// disruption budget per role, references that resolve, and a configuration that hop's own schema accepts.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadServerConfig } from '../../src/config.ts';
import { kubectlAvailable, render, ROOT, validate, type K8sObject } from '../support/k8s-validate.ts';

const K8S = join(ROOT, 'deploy', 'k8s');
const OVERLAYS = ['base', 'overlays/dev', 'overlays/production'] as const;
const ROLES = ['redirect', 'api', 'consumer'] as const;

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] } };
  startupProbe?: { httpGet?: { path: string; port: string } };
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string }; periodSeconds?: number; failureThreshold?: number };
}
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: {
    containers: Container[];
    securityContext?: Record<string, unknown> & { seccompProfile?: { type: string } };
    terminationGracePeriodSeconds?: number;
    automountServiceAccountToken?: boolean;
  };
}
type Workload = K8sObject & { spec: { template: PodTemplate; selector?: { matchLabels: Record<string, string> } } };

const of = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const hopWorkloads = (objects: K8sObject[]) =>
  objects.filter((o): o is Workload => (o.kind === 'Deployment' || o.kind === 'Job') && (o as Workload).spec.template.metadata.labels['app.kubernetes.io/name'] === 'hop');
const deployment = (objects: K8sObject[], role: string) => objects.find((o) => o.kind === 'Deployment' && o.metadata.name === `hop-${role}`) as Workload;

describe.runIf(kubectlAvailable())('Kubernetes manifests (deploy/k8s)', () => {
  const rendered: Record<string, K8sObject[]> = {};
  let scratch: string;

  beforeAll(async () => {
    for (const overlay of OVERLAYS) rendered[overlay] = await render(join(K8S, overlay));
    mkdirSync(join(ROOT, '.scratch'), { recursive: true });
    scratch = mkdtempSync(join(ROOT, '.scratch', 'k8s-copy-'));
  }, 60_000);

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('renders every overlay, and every object validates against its schema', async () => {
    for (const overlay of OVERLAYS) expect(rendered[overlay]!.length, overlay).toBeGreaterThan(10);
    expect(await validate(rendered)).toEqual([]);
  }, 60_000);

  it('fails validation for typos planted in a copy: an unknown field, a wrong type, a bad enum, a CRD field', async () => {
    cpSync(K8S, scratch, { recursive: true });
    const plant = (file: string, from: string, to: string) => {
      const path = join(scratch, file);
      const text = readFileSync(path, 'utf8');
      expect(text, `${file} contains ${from}`).toContain(from);
      writeFileSync(path, text.replace(from, to));
    };
    plant('base/redirect.yaml', 'containerPort: 8787', 'containerPorts: 8787');
    plant('base/autoscaling.yaml', 'averageUtilization: 65', 'averageUtilization: "65"');
    plant('base/gateway.yaml', 'type: PathPrefix', 'type: PathPrefixx');
    plant('components/keda-consumer/scaledobject.yaml', 'minReplicaCount: 1', 'minReplicaCounts: 1');
    const errors = await validate({ production: await render(join(scratch, 'overlays/production')) });
    const has = (re: RegExp) => expect(errors.some((e) => re.test(e)), `${re} in:\n${errors.join('\n')}`).toBe(true);
    has(/Deployment\/hop-redirect: error TS2353: .*'"containerPorts"'/);
    has(/Deployment\/hop-redirect: .*must have required property containerPort/);
    has(/HorizontalPodAutoscaler\/hop-redirect: error TS2322: Type 'string' is not assignable to type 'number'/);
    has(/HTTPRoute\/hop: .*path\/type must be equal to one of the allowed values/);
    has(/ScaledObject\/hop-consumer: error TS2353: .*'"minReplicaCounts"'/);
    expect(errors.filter((e) => !/hop-redirect|HTTPRoute\/hop|ScaledObject\/hop-consumer/.test(e))).toEqual([]);
  }, 60_000);

  it.each(OVERLAYS)('%s: every hop pod runs restricted (non-root, read-only root, no capabilities, seccomp, limits)', (overlay) => {
    const workloads = hopWorkloads(rendered[overlay]!);
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual(['hop-api', 'hop-consumer', 'hop-migrate', 'hop-redirect']);
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      expect(pod.securityContext, w.metadata.name).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.automountServiceAccountToken, w.metadata.name).toBe(false);
      for (const c of pod.containers) {
        expect(c.securityContext, w.metadata.name).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        expect(c.resources?.requests?.cpu && c.resources.requests.memory && c.resources.limits?.memory && c.resources.limits.cpu, w.metadata.name).toBeTruthy();
      }
    }
  });

  it.each(OVERLAYS)('%s: the HTTP roles have startup, liveness (/livez) and readiness (/readyz) probes and drain in time', (overlay) => {
    const objects = rendered[overlay]!;
    const config = of(objects, 'ConfigMap').find((c) => c.metadata.name.startsWith('hop-config')) as K8sObject & { data: Record<string, string> };
    const delayS = Number(config.data.HOP_SHUTDOWN_DELAY_MS) / 1000;
    for (const role of ['redirect', 'api']) {
      const { spec } = deployment(objects, role).spec.template;
      const c = spec.containers[0]!;
      expect(c.args).toEqual(['serve', '--role', role]);
      expect(c.startupProbe?.httpGet).toEqual({ path: '/livez', port: 'http' });
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/livez', port: 'http' });
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
      // Endpoints are removed (readiness failing) before the drain delay ends, and the pod gets the delay plus the
      // server's 10 s for requests in flight before SIGKILL.
      expect(c.readinessProbe!.periodSeconds! * c.readinessProbe!.failureThreshold!).toBeLessThan(delayS);
      expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(delayS + 10);
    }
    expect(deployment(objects, 'consumer').spec.template.spec.containers[0]!.args).toEqual(['consume']);
  });

  it.each(OVERLAYS)('%s: each role has a scaler and a disruption budget, and every reference resolves', (overlay) => {
    const objects = rendered[overlay]!;
    const hpas = of(objects, 'HorizontalPodAutoscaler') as (K8sObject & { spec: { scaleTargetRef: { name: string } } })[];
    const scaled = of(objects, 'ScaledObject') as (K8sObject & { spec: { scaleTargetRef: { name: string } } })[];
    expect(hpas.map((h) => h.spec.scaleTargetRef.name).sort()).toEqual(['hop-api', 'hop-redirect']);
    expect(scaled.map((s) => s.spec.scaleTargetRef.name)).toEqual(overlay === 'overlays/production' ? ['hop-consumer'] : []);
    const pdbs = of(objects, 'PodDisruptionBudget') as (K8sObject & { spec: { selector: { matchLabels: Record<string, string> } } })[];
    for (const role of ROLES) {
      const labels = deployment(objects, role).spec.template.metadata.labels;
      const matches = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
      expect(pdbs.filter((p) => matches(p.spec.selector.matchLabels)).length, role).toBe(1);
      expect(matches(deployment(objects, role).spec.selector!.matchLabels), role).toBe(true);
    }
    // Services select a hop Deployment's pods; the route's backends are those Services.
    const services = of(objects, 'Service') as (K8sObject & { spec: { selector: Record<string, string> } })[];
    const route = of(objects, 'HTTPRoute')[0] as K8sObject & { spec: { rules: { backendRefs?: { name: string }[] }[] } };
    const backends = route.spec.rules.flatMap((r) => r.backendRefs ?? []).map((b) => b.name);
    expect([...new Set(backends)].sort()).toEqual(['hop-api', 'hop-redirect']);
    for (const name of backends) {
      const svc = services.find((s) => s.metadata.name === name)!;
      expect(svc, name).toBeDefined();
      expect(deployment(objects, name.replace('hop-', '')).spec.template.metadata.labels).toMatchObject(svc.spec.selector);
    }
    // /metrics is answered at the edge by a rule without backends (404), before the catch-all.
    expect(route.spec.rules[0]).toEqual({ matches: [{ path: { type: 'Exact', value: '/metrics' } }] });
    // The generated ConfigMap's name (with its content hash) is the one the pods read.
    const configName = of(objects, 'ConfigMap').find((c) => c.metadata.name.startsWith('hop-config'))!.metadata.name;
    for (const w of hopWorkloads(objects)) {
      for (const c of w.spec.template.spec.containers) {
        for (const ref of c.envFrom ?? []) if (ref.configMapRef) expect(ref.configMapRef.name).toBe(configName);
      }
    }
  });

  it('the redirect HPA targets the metric the Prometheus adapter rule makes', () => {
    const values = parse(readFileSync(join(K8S, 'prometheus-adapter-values.yaml'), 'utf8')) as {
      rules: { custom: { seriesQuery: string; name: { as: string } }[] };
    };
    const hpa = of(rendered.base!, 'HorizontalPodAutoscaler').find((h) => h.metadata.name === 'hop-redirect') as K8sObject & {
      spec: { metrics: { type: string; pods?: { metric: { name: string } } }[] };
    };
    const pods = hpa.spec.metrics.find((m) => m.type === 'Pods')!.pods!.metric.name;
    expect(values.rules.custom.map((r) => r.name.as)).toContain(pods);
    expect(hpa.spec.metrics.some((m) => m.type === 'Resource')).toBe(true);
  });

  it('dev: the Secret it generates holds every key the pods need, and hop accepts the configuration of each role', () => {
    const objects = rendered['overlays/dev']!;
    const config = of(objects, 'ConfigMap').find((c) => c.metadata.name.startsWith('hop-config')) as K8sObject & { data: Record<string, string> };
    const secret = of(objects, 'Secret').find((s) => s.metadata.name.startsWith('hop-secrets')) as K8sObject & { data: Record<string, string> };
    expect(secret).toBeDefined();
    const secretValues = Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, atob(v)]));
    for (const role of ROLES) {
      const c = deployment(objects, role).spec.template.spec.containers[0]!;
      const env: Record<string, string> = { ...config.data };
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref) {
          expect(ref.name).toBe(secret.metadata.name);
          if (!ref.optional) expect(secretValues, `${role}: ${ref.key}`).toHaveProperty(ref.key);
          if (ref.key in secretValues) env[e.name] = secretValues[ref.key]!;
        } else if (e.value !== undefined) env[e.name] = e.value;
      }
      const parsed = loadServerConfig(env);
      expect(parsed.queue, role).toBe('redis');
      expect(parsed.databaseUrl, role).toBe('libsql://sqld:8080?tls=0');
    }
  });
});
