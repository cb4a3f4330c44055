// The architecture rules are real lint rules: the same eslint config the project runs refuses these sources.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: new URL('../..', import.meta.url).pathname });

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

// Node-only code, each with the rule that refuses it in the portable core.
const nodeOnlyCode: [string, string][] = [
  ["import { readFileSync } from 'node:fs';\nexport const f = readFileSync;\n", 'no-restricted-imports'],
  ["import { DatabaseSync } from 'node:sqlite';\nexport const d = DatabaseSync;\n", 'no-restricted-imports'],
  // bare built-in specifiers, with and without a subpath
  ["import { readFileSync } from 'fs';\nexport const f = readFileSync;\n", 'no-restricted-imports'],
  ["import os from 'os';\nexport const o = os;\n", 'no-restricted-imports'],
  ["import { readFile } from 'fs/promises';\nexport const f = readFile;\n", 'no-restricted-imports'],
  ["import { Buffer as B } from 'buffer';\nexport const b = B;\n", 'no-restricted-imports'],
  ["export { env } from 'process';\n", 'no-restricted-imports'],
  ["export * from 'child_process';\n", 'no-restricted-imports'],
  // dynamic import() of a built-in
  ["export const fs = await import('fs/promises');\n", 'no-restricted-syntax'],
  ["export const fs = await import('node:fs');\n", 'no-restricted-syntax'],
  // the globals, directly and through the global object
  ["export const port = process.env.PORT;\n", 'no-restricted-globals'],
  ["export const b = Buffer.from('x');\n", 'no-restricted-globals'],
  ["export const port = globalThis.process.env.PORT;\n", 'no-restricted-properties'],
  ["export const b = globalThis.Buffer.from('x');\n", 'no-restricted-properties'],
  ["export const b = globalThis['Buffer'];\n", 'no-restricted-properties'],
  ["const { process: p } = globalThis;\nexport const port = p.env.PORT;\n", 'no-restricted-properties'],
  ["export const port = self.process.env.PORT;\n", 'no-restricted-properties'],
  ["export const port = global.process.env.PORT;\n", 'no-restricted-properties'],
];

describe('portable core', () => {
  it.each(nodeOnlyCode)('refuses %j in src/modules', async (code, rule) => {
    expect(await ruleIds(code, 'src/modules/links/example.ts')).toContain(rule);
  });

  // Files matched by several blocks (a layer block replaces the core's no-restricted-imports options) keep the ban.
  it.each([
    'src/app.ts',
    'src/http/example.ts',
    'src/modules/links/links.routes.ts',
    'src/modules/links/links.service.ts',
    'src/modules/links/links.schemas.ts',
    'src/modules/links/links.repository.ts',
    'src/platform/example.ts',
    'src/db/example.ts',
  ])('refuses bare and node: built-ins in %s', async (filePath) => {
    for (const source of ['fs', 'fs/promises', 'node:fs']) {
      const code = `import { readFile } from '${source}';\nexport const f = readFile;\n`;
      expect(await ruleIds(code, filePath)).toContain('no-restricted-imports');
    }
  });

  // The Workers' entries (the redirect's and the click consumer's) sit with the runtimes but run in workerd.
  it.each(nodeOnlyCode)('refuses %j in the Worker entries', async (code, rule) => {
    for (const file of ['worker.ts', 'worker-consumer.ts', 'worker-bindings.ts', 'worker-zod.ts']) {
      expect(await ruleIds(code, `src/runtimes/${file}`)).toContain(rule);
    }
  });

  it.each(nodeOnlyCode)('allows %j in src/runtimes and src/cli', async (code) => {
    expect(await ruleIds(code, 'src/runtimes/example.ts')).toEqual([]);
    expect(await ruleIds(code, 'src/cli/example.ts')).toEqual([]);
  });

  it('does not mistake look-alike names for built-ins', async () => {
    const code =
      "import { a } from './fs.ts';\nimport { b } from 'fsx';\nimport { c } from 'hono/http-exception';\n" +
      "export const x = [a, b, c, await import('./os.ts')];\n";
    expect(await ruleIds(code, 'src/modules/links/links.service.ts')).toEqual([]);
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

describe('lower layers never import HTTP', () => {
  const fromHttp = [
    "import type { AppEnv } from '../../http/env.ts';\nexport type X = AppEnv;\n",
    "import { requireScope } from '../../http/middleware/auth.ts';\nexport const x = requireScope;\n",
    "import type { LinksRoutes } from './links.routes.ts';\nexport type X = LinksRoutes;\n",
    "import { healthRoutes } from '../health/health.routes.ts';\nexport const x = healthRoutes;\n",
  ];
  it.each(
    ['links.service.ts', 'links.repository.ts', 'links.schemas.ts'].flatMap((file) =>
      fromHttp.map((code) => [`src/modules/links/${file}`, code]),
    ),
  )('refuses in %s: %j', async (filePath, code) => {
    expect(await ruleIds(code, filePath)).toContain('no-restricted-imports');
  });

  it.each([
    ['src/modules/shared.schemas.ts', "import type { AppEnv } from '../http/env.ts';\nexport type X = AppEnv;\n"],
    ['src/platform/logger.ts', "import type { AppEnv } from '../http/env.ts';\nexport type X = AppEnv;\n"],
    ['src/platform/db/client.ts', "import type { AppEnv } from '../../http/env.ts';\nexport type X = AppEnv;\n"],
    ['src/db/schema.ts', "import type { AppEnv } from '../http/env.ts';\nexport type X = AppEnv;\n"],
    // A module's other files, and the error model every layer throws, map nothing to HTTP themselves.
    ['src/modules/stats/stats.time.ts', "import { errorStatus } from '../../http/problem.ts';\nexport const x = errorStatus;\n"],
    ['src/modules/redirect/redirect.cache.ts', "import { HttpError } from '../../http/problem.ts';\nexport const x = HttpError;\n"],
    ['src/platform/ratelimit/guard.ts', "import { HttpError } from '../../http/problem.ts';\nexport const x = HttpError;\n"],
    ['src/errors.ts', "import { errorStatus } from './http/problem.ts';\nexport const x = errorStatus;\n"],
    ['src/config.ts', "import type { AppEnv } from './http/env.ts';\nexport type X = AppEnv;\n"],
  ])('refuses in %s: %j', async (filePath, code) => {
    expect(await ruleIds(code, filePath)).toContain('no-restricted-imports');
  });

  it('allows a routes file and the HTTP layer to import the problem mapper', async () => {
    const code = "import { HttpError } from '../../http/problem.ts';\nexport const x = HttpError;\n";
    expect(await ruleIds(code, 'src/modules/links/links.routes.ts')).toEqual([]);
    expect(await ruleIds(code.replace('../../http/', '../'), 'src/http/middleware/auth.ts')).toEqual([]);
  });

  it('allows a service to import its repository, schemas and the shared modules context', async () => {
    const code =
      "import type { LinksRepository } from './links.repository.ts';\nimport { SLUG_PATTERN } from './links.schemas.ts';\n" +
      "import type { ServiceContext } from '../context.ts';\nexport type X = [LinksRepository, ServiceContext, typeof SLUG_PATTERN];\n";
    expect(await ruleIds(code, 'src/modules/links/links.service.ts')).toEqual([]);
  });
});

describe('repositories never call services', () => {
  it.each([
    "import type { LinksService } from './links.service.ts';\nexport type X = LinksService;\n",
    "import { canonicalHost } from '../workspaces/workspaces.service.ts';\nexport const x = canonicalHost;\n",
  ])('refuses %j in a repository', async (code) => {
    expect(await ruleIds(code, 'src/modules/links/links.repository.ts')).toContain('no-restricted-imports');
  });

  it('allows a repository to use drizzle, the schema and the db client', async () => {
    const code =
      "import { eq } from 'drizzle-orm';\nimport { links } from '../../db/schema.ts';\n" +
      "import type { Orm } from '../../platform/db/client.ts';\nexport type X = [typeof eq, typeof links, Orm];\n";
    expect(await ruleIds(code, 'src/modules/links/links.repository.ts')).toEqual([]);
  });
});

describe('only the composition root builds services, stores and queues', () => {
  const builds = [
    "import { createLinksService } from '../modules/links/links.service.ts';\nexport const x = createLinksService;\n",
    "import { createMemoryQueue } from '../platform/queue/memory.ts';\nexport const x = createMemoryQueue;\n",
    "import { createRedisStreamsProducer } from '../platform/queue/redis-streams.ts';\nexport const x = createRedisStreamsProducer;\n",
    "import { createMemoryRateLimitStore } from '../platform/ratelimit/memory.ts';\nexport const x = createMemoryRateLimitStore;\n",
    "import { createCachedLookup } from '../modules/redirect/redirect.cache.ts';\nexport const x = createCachedLookup;\n",
    "import { createTokenVerifier } from '../platform/oidc.ts';\nexport const x = createTokenVerifier;\n",
  ];
  it.each(
    ['src/runtimes/server.ts', 'src/runtimes/worker.ts', 'src/cli/hop.ts', 'src/app.ts', 'src/http/example.ts',
      'src/modules/links/links.routes.ts', 'bench/ingest.ts', 'test/helpers/app.ts', 'test/integration/links.test.ts'].flatMap((file) =>
      builds.map((code) => [file, code]),
    ),
  )('refuses in %s: %j', async (filePath, code) => {
    expect(await ruleIds(code, filePath)).toContain('no-restricted-imports');
  });

  it('allows the composition root, types from the same modules, and a unit test of one module', async () => {
    expect(await ruleIds(builds[0]!, 'src/composition/root.ts')).toEqual([]);
    expect(await ruleIds(builds[1]!, 'test/unit/example.test.ts')).toEqual([]);
    const types = "import type { LinksService } from '../modules/links/links.service.ts';\nexport type X = LinksService;\n";
    expect(await ruleIds(types, 'src/runtimes/server.ts')).toEqual([]);
  });
});

describe('the launcher loads on any Node', () => {
  it.each([
    "import '../src/cli/hop.ts';\n",
    "import { main } from '../src/cli/hop.ts';\nmain();\n",
    "export { main } from '../src/cli/hop.mts';\n",
    "export * from '../src/cli/hop.ts';\n",
  ])('refuses the static %j in bin/', async (code) => {
    expect(await ruleIds(code, 'bin/hop.js')).toContain('no-restricted-syntax');
  });

  it('refuses a name Node does not define', async () => {
    expect(await ruleIds('Deno.exit(1);\n', 'bin/hop.js')).toContain('no-undef');
  });

  it('allows the version check, then import() of the TypeScript CLI', async () => {
    const code =
      "import { runsHop } from './node-version.js';\n" +
      "if (runsHop(process.versions.node)) await import('../src/cli/hop.ts');\nelse console.error('too old');\n";
    expect(await ruleIds(code, 'bin/hop.js')).toEqual([]);
  });
});
