// The Workers' size budgets: wrangler's own dry-run build (what `npm run build:worker` and a deploy upload) of the
// redirect Worker's script stays within 142 KiB gzip, and so does the click consumer's (raised from 138 for the
// sharded repositories, which the composition root carries on every runtime). The redirect Worker also
// uploads the API reference's script and style as two text modules beside its script (wrangler.toml `[[rules]]`,
// served at /docs; about 475 KiB gzip, within 500): strings, never parsed as code, counted apart. The consumer is a Worker of its own
// so that user-agent parsing stays off the redirect path: the redirect's bundle must not contain bowser or isbot.
// Measured in a test because a dependency update or an import can break it silently.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

// 120 until OIDC access tokens: jose's verification and hop's verifier (about 8 KiB gzip, docs/architecture.md "OIDC access tokens") are in
// the redirect Worker, which also serves /v1 (wrangler's single-file build inlines a dynamic import); 2 KiB of headroom.
// 130 until traces: the tracer, its OTLP JSON exporter and the propagation through the queue (about 3.4 KiB gzip,
// docs/architecture.md "Traces"). 135 until metrics: histograms, request metrics by route, database call metrics and
// who may read /metrics (about 3 KiB gzip, docs/deployment.md "Metrics"). 140 until Workers served shards with read
// replicas: opening them and reading the bucket map, the replica reader and its counters, the `primary|replica`
// syntax of HOP_DATABASE_SHARDS (about 1.6 KiB gzip; the redirect Worker measured 140.4). hop's own budget, far
// under the platform's limit (3 MiB compressed on the free plan).
const BUDGET_KIB = 142;
const DOCS_BUDGET_KIB = 500;
const outdir = mkdtempSync(join(tmpdir(), 'hop-worker-build-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

const UA_PARSING = ['bowser', 'isbot'];

const DOCS_MODULES = ['swagger-ui-bundle.js', 'swagger-ui.css'];

const workers = [
  { name: 'the redirect Worker', config: 'wrangler.toml', script: 'worker.js', bundles: [], leavesOut: UA_PARSING, textModules: DOCS_MODULES },
  { name: 'the click consumer Worker', config: 'wrangler.consumer.toml', script: 'worker-consumer.js', bundles: UA_PARSING, leavesOut: [], textModules: [] },
];

describe.each(workers)('$name ($config)', ({ config, script, bundles, leavesOut, textModules }) => {
  it(`builds within ${BUDGET_KIB} KiB gzip, with only the packages it uses`, async () => {
    const dir = join(outdir, config);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['node_modules/wrangler/bin/wrangler.js', 'deploy', '--dry-run', '--outdir', dir, '--metafile', '--env', '', '-c', config],
      { env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
    );
    const reported = /Total Upload: [\d.]+ KiB \/ gzip: ([\d.]+) KiB/.exec(stdout);
    expect(reported, stdout).not.toBeNull();
    // Our own measure of the same files, so the budget does not rest on parsing wrangler's output alone.
    const gzipKiB = (file: string) => gzipSync(readFileSync(join(dir, file))).length / 1024;
    const scriptKiB = gzipKiB(script);
    expect(scriptKiB).toBeLessThanOrEqual(BUDGET_KIB);
    // The other modules wrangler wrote beside the script (named <hash>-<file>): the text modules, and nothing else.
    const modules = readdirSync(dir).filter((f) => f !== script && !f.endsWith('.map') && !f.endsWith('.json') && f !== 'README.md');
    expect(modules.map((f) => f.replace(/^[0-9a-f]{40}-/, '')).sort()).toEqual([...textModules].sort());
    const modulesKiB = modules.reduce((sum, f) => sum + gzipKiB(f), 0);
    expect(modulesKiB).toBeLessThanOrEqual(DOCS_BUDGET_KIB);
    expect(Math.abs(scriptKiB + modulesKiB - Number(reported![1]))).toBeLessThan(5);
    console.log(`${config}: script ${scriptKiB.toFixed(1)} KiB gzip, text modules ${modulesKiB.toFixed(1)} KiB gzip`);

    // Which packages esbuild put in the script: node_modules/<name>/ (or @scope/name) of every input with bytes in it.
    const meta = JSON.parse(readFileSync(join(dir, 'bundle-meta.json'), 'utf8')) as {
      outputs: Record<string, { inputs?: Record<string, { bytesInOutput: number }> }>;
    };
    const output = Object.entries(meta.outputs).find(([path]) => path.endsWith(`/${script}`));
    expect(output, Object.keys(meta.outputs).join(', ')).toBeDefined();
    const packages = new Set(
      Object.entries(output![1].inputs ?? {}).flatMap(([input, { bytesInOutput }]) => {
        const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
        return m && bytesInOutput > 0 ? [m[1]!] : [];
      }),
    );
    for (const name of bundles) expect(packages).toContain(name);
    for (const name of leavesOut) expect(packages).not.toContain(name);
  }, 120_000);
});
