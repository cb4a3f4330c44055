/**
 * Offline validation of rendered Kubernetes manifests (no API server here): `kubectl kustomize` renders a
 * directory, then every object is checked twice:
 * - by TypeScript: each object becomes a typed literal (`kubernetes-types` for built-in kinds, the `I<Kind>`
 *   interfaces of `@kubernetes-models/*` for Gateway API and KEDA) checked by `tsc --strict`, which refuses unknown
 *   fields (TS2353: a misspelled `containerPorts`) and wrong types;
 * - by `kubernetes-models`' JSON schemas: required fields, enums, formats (`PathPrefixx`, a missing `containerPort`).
 * `kubectlAvailable()` skips tests where kubectl is missing, with how to get it, except under CI=true.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const exec = promisify(execFile);
export const ROOT = new URL('../../', import.meta.url).pathname;

export const KUBECTL_INSTALL_HINT =
  'install kubectl (1.27+, it carries kustomize): apt-get install kubectl from the Kubernetes apt repository ' +
  '(pkgs.k8s.io), brew install kubectl, or the binary from the Kubernetes release page';

export function kubectlAvailable(): boolean {
  if (spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0) return true;
  if (process.env.CI === 'true') throw new Error(`kubectl is required under CI=true: ${KUBECTL_INSTALL_HINT}`);
  console.warn(`skipping the Kubernetes manifest tests: ${KUBECTL_INSTALL_HINT}`);
  return false;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: unknown;
  [field: string]: unknown;
}

/** `kubectl kustomize dir`, parsed. */
export async function render(dir: string): Promise<K8sObject[]> {
  const { stdout } = await exec('kubectl', ['kustomize', dir], { maxBuffer: 16 << 20 });
  return parseAllDocuments(stdout).map((doc) => {
    if (doc.errors.length) throw new Error(`kubectl kustomize ${dir} printed invalid YAML: ${doc.errors[0]!.message}`);
    return doc.toJS() as K8sObject;
  });
}

const id = (o: K8sObject) => `${o.kind}/${o.metadata?.name}`;

// Custom resources: their package (kubernetes-models style, one module per kind exporting the class and I<Kind>).
const CRD_PACKAGES: Record<string, string> = {
  'gateway.networking.k8s.io': '@kubernetes-models/gateway-api',
  'keda.sh': '@kubernetes-models/keda',
};

function groupOf(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** Where the TypeScript type of an object comes from: [module, exported type name]. */
function typeOf(o: K8sObject): [string, string] {
  const { group, version } = groupOf(o.apiVersion);
  const crd = CRD_PACKAGES[group];
  if (crd) return [`${crd}/${group}/${version}/${o.kind}`, `I${o.kind}`];
  // kubernetes-types: core/v1, apps/v1, autoscaling/v2, networking/v1 (networking.k8s.io), policy/v1, batch/v1...
  return [`kubernetes-types/${group ? group.split('.')[0] : 'core'}/${version}`, o.kind];
}

/** The JSON-schema check of kubernetes-models; one message per object that fails. */
async function schemaErrors(objects: K8sObject[]): Promise<string[]> {
  const errors: string[] = [];
  for (const o of objects) {
    const { group, version } = groupOf(o.apiVersion ?? '');
    const pkg = CRD_PACKAGES[group] ?? 'kubernetes-models';
    const path = group ? `${group}/${version}` : version;
    let Model: (new (data: unknown) => { validate(): void }) | undefined;
    try {
      Model = ((await import(`${pkg}/${path}/${o.kind}`)) as Record<string, typeof Model>)[o.kind];
    } catch {
      Model = undefined;
    }
    if (!Model) {
      errors.push(`${id(o)}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (err) {
      errors.push(`${id(o)}: ${(err as Error).message}`);
    }
  }
  return errors;
}

/**
 * Type-checks every object with `tsc --strict` in a scratch directory under the repository (so that node_modules
 * resolves); one message per compiler error, prefixed with the object it is in.
 */
async function typeErrors(sets: Record<string, K8sObject[]>): Promise<string[]> {
  mkdirSync(join(ROOT, '.scratch'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, '.scratch', 'k8s-'));
  try {
    const owners: { file: string; from: number; to: number; name: string }[] = [];
    const files: string[] = [];
    for (const [setName, objects] of Object.entries(sets)) {
      const file = `${setName.replace(/[^a-z0-9]+/gi, '-')}.ts`;
      const imports = new Map<string, Set<string>>();
      for (const o of objects) {
        const [mod, type] = typeOf(o);
        if (!imports.has(mod)) imports.set(mod, new Set());
        imports.get(mod)!.add(type);
      }
      const lines = [...imports].map(([mod, types]) => `import type { ${[...types].join(', ')} } from '${mod}';`);
      objects.forEach((o, i) => {
        const body = JSON.stringify(o, null, 2).split('\n');
        const from = lines.length + 1;
        lines.push(`export const o${i}: ${typeOf(o)[1]} = ${body[0]}`, ...body.slice(1));
        owners.push({ file, from, to: lines.length, name: `${setName}: ${id(o)}` });
      });
      writeFileSync(join(dir, file), lines.join('\n') + '\n');
      files.push(file);
    }
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true, noEmit: true, target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler',
          types: [], skipLibCheck: true,
        },
        files,
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const run = await exec(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(
      () => '',
      (err: { stdout?: string; stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}`,
    );
    const errors: string[] = [];
    for (const line of run.split('\n')) {
      const m = /^(.+?\.ts)\((\d+),\d+\): (error TS\d+: .*)$/.exec(line.trim());
      if (!m) continue;
      const owner = owners.find((o) => m[1]!.endsWith(o.file) && +m[2]! >= o.from && +m[2]! <= o.to);
      errors.push(`${owner?.name ?? m[1]}: ${m[3]}`);
    }
    if (run && !errors.length) throw new Error(`tsc failed without a located error:\n${run}`);
    return errors;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every error found in the rendered sets (named, e.g. by overlay); empty when all are valid. */
export async function validate(sets: Record<string, K8sObject[]>): Promise<string[]> {
  const schema = (await Promise.all(Object.entries(sets).map(async ([n, objs]) => (await schemaErrors(objs)).map((e) => `${n}: ${e}`)))).flat();
  return [...schema, ...(await typeErrors(sets))];
}
