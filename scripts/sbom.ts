/**
 * `npm run sbom`: a CycloneDX SBOM of what hop ships (production dependencies), written to sbom.cdx.json by npm.
 * `npm sbom --omit dev` (npm 11) also drops a production dependency that a dev dependency shares (jose, through
 * oidc-provider): such direct dependencies are put back from the full document.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

interface Bom {
  components: Array<{ name: string; 'bom-ref': string }>;
  dependencies?: Array<{ ref: string; dependsOn?: string[] }>;
}

const sbom = (...extra: string[]) =>
  JSON.parse(
    execFileSync('npm', ['sbom', '--sbom-format', 'cyclonedx', '--sbom-type', 'application', ...extra], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    }),
  ) as Bom;

const shipped = sbom('--omit', 'dev');
const everything = sbom();
const direct = Object.keys((JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> }).dependencies);
const have = new Set(shipped.components.map((c) => c.name));
for (const name of direct.filter((n) => !have.has(n))) {
  const component = everything.components.find((c) => c.name === name);
  if (!component) throw new Error(`${name} is a dependency but npm lists no such package: run npm install`);
  shipped.components.push(component);
  const edges = everything.dependencies?.find((d) => d.ref === component['bom-ref']);
  if (edges) shipped.dependencies?.push(edges);
}
writeFileSync('sbom.cdx.json', `${JSON.stringify(shipped, null, 2)}\n`);
console.log(`wrote sbom.cdx.json (CycloneDX, ${shipped.components.length} production components)`);
