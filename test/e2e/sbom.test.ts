// `npm run sbom` writes a CycloneDX SBOM of the production dependencies, as a user would run it.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

it('writes sbom.cdx.json: CycloneDX, every production dependency and none of the dev ones', async () => {
  await promisify(execFile)('npm', ['run', 'sbom'], { cwd: ROOT });
  const bom = JSON.parse(readFileSync(`${ROOT}sbom.cdx.json`, 'utf8')) as {
    bomFormat: string;
    specVersion: string;
    components: Array<{ name: string; version: string; purl: string }>;
  };
  expect(bom.bomFormat).toBe('CycloneDX');
  expect(Number(bom.specVersion)).toBeGreaterThanOrEqual(1.5);
  const names = new Set(bom.components.map((c) => c.name));
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies)) expect(names, dep).toContain(dep);
  for (const dev of ['vitest', 'wrangler', 'eslint']) expect(names, dev).not.toContain(dev);
  for (const c of bom.components) expect(c.purl).toMatch(/^pkg:npm\//);
}, 60_000);
