// The architecture rules are real lint rules: the same eslint config the project runs refuses these sources.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: new URL('../..', import.meta.url).pathname });

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

describe('portable core', () => {
  it.each([
    ["import { readFileSync } from 'node:fs';\nexport const f = readFileSync;\n", 'no-restricted-imports'],
    ["export const port = process.env.PORT;\n", 'no-restricted-globals'],
    ["export const b = Buffer.from('x');\n", 'no-restricted-globals'],
  ])('refuses %j in src/modules', async (code, rule) => {
    expect(await ruleIds(code, 'src/modules/links/example.ts')).toContain(rule);
  });

  it('allows the same code in src/runtimes and src/cli', async () => {
    const code = "import { readFileSync } from 'node:fs';\nexport const f = readFileSync;\nexport const p = process.env.PORT;\n";
    expect(await ruleIds(code, 'src/runtimes/example.ts')).toEqual([]);
    expect(await ruleIds(code, 'src/cli/example.ts')).toEqual([]);
  });
});

describe('routes never touch the database', () => {
  it.each([
    "import { eq } from 'drizzle-orm';\nexport const x = eq;\n",
    "import { createClient } from '@libsql/client';\nexport const x = createClient;\n",
    "import { links } from '../../db/schema.ts';\nexport const x = links;\n",
    "import { createLinksRepository } from './links.repository.ts';\nexport const x = createLinksRepository;\n",
  ])('refuses %j in a routes file', async (code) => {
    expect(await ruleIds(code, 'src/modules/links/links.routes.ts')).toContain('no-restricted-imports');
  });

  it('allows a routes file that imports a service', async () => {
    const code = "import type { LinksService } from './links.service.ts';\nexport type X = LinksService;\n";
    expect(await ruleIds(code, 'src/modules/links/links.routes.ts')).toEqual([]);
  });
});
