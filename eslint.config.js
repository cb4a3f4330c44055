// Lint: typescript-eslint's recommended rules plus the architecture rules of hop.
//
// Flat config REPLACES a rule's options when a later block matching the same file sets that rule again,
// so `no-restricted-imports` is never layered block over block: every block below that sets it passes
// the COMPLETE list of restrictions for its files, built with `restrict(...)` from the named sets.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// Every Node built-in, bare (`fs`, `os`, `buffer`) or with a subpath (`fs/promises`), plus anything `node:*`
// (which covers the prefix-only built-ins such as node:sqlite and node:test).
const builtinNames = [...new Set(builtinModules.filter((m) => !m.startsWith('node:')).map((m) => m.split('/')[0]))];
const builtinSource = `^(?:node:.*|(?:${builtinNames.map(escape).join('|')})(?:\\x2F.*)?)$`; // \x2F is '/', esquery-safe
const coreMessage =
  'Node built-ins belong in src/runtimes/ or src/cli/ only; the core is web-standard (Uint8Array/TextEncoder, config through createApp(deps)).';

// The named restriction sets; `restrict` merges them into one option object for no-restricted-imports.
const nodeBuiltins = [{ regex: builtinSource, caseSensitive: true, message: coreMessage }];
const noDatabase = [
  { group: ['drizzle-orm', 'drizzle-orm/*', '@libsql/*', '**/db/schema*', '**/platform/db/*', '**/*.repository*'],
    message: 'Routes call services; only repositories touch the database.' },
];
const noHttp = [
  { group: ['**/http', '**/http/*', '**/http/**', '**/*.routes*'],
    message: 'Services, repositories, schemas, platform and db sit below HTTP: they never import src/http/ or a routes file.' },
];
const noServices = [
  { group: ['**/*.service*'], message: 'Repositories are the bottom of a module: services call repositories, not the reverse.' },
];
// Services, stores and queues are built by the composition root alone (src/composition/): their factories are
// refused everywhere else that wires hop (entries, CLI, app, HTTP, benchmarks, tests). An adapter may still build
// its own parts (platform/), and a unit test of one module, or the integration test of one adapter, its subject.
const noConstruction = [
  { group: ['**/*.service*', '**/*.cache*', '**/platform/queue/**', '**/platform/ratelimit/**', '**/platform/cache/**',
    '**/platform/oidc*'],
    importNamePattern: '^create\\w*(Service|Store|Queue|Producer|Consumer|Limiter|Lookup|Verifier)$',
    message: 'Services, stores and queues are built by the composition root (src/composition/), not here.' },
];
const restrict = (...sets) => ['error', { patterns: sets.flat() }];

const portableRules = {
  'no-restricted-imports': restrict(nodeBuiltins),
  'no-restricted-globals': [
    'error',
    { name: 'Buffer', message: 'The portable core uses Uint8Array and TextEncoder, not Buffer.' },
    { name: 'process', message: 'Configuration reaches the core through createApp(deps), not process.env.' },
  ],
  'no-restricted-properties': [
    'error',
    ...['globalThis', 'self', 'global'].flatMap((object) => [
      { object, property: 'process', message: 'Configuration reaches the core through createApp(deps), not process.env.' },
      { object, property: 'Buffer', message: 'The portable core uses Uint8Array and TextEncoder, not Buffer.' },
    ]),
  ],
  'no-restricted-syntax': [
    'error',
    { selector: `ImportExpression[source.value=/${builtinSource}/]`, message: coreMessage },
  ],
};

// The Workers' entries (worker.ts, the click consumer worker-consumer.ts), their shared worker-bindings.ts and the
// zod alias live in src/runtimes/ but run in workerd: they are portable like the core.
const workerEntry = ['src/runtimes/worker.ts', 'src/runtimes/worker-*.ts'];
const core = { files: ['src/**/*.ts'], ignores: ['src/runtimes/**', 'src/cli/**'] };
// Everything of a module but its routes file, and what every layer shares (the error model, the configuration).
const lowerLayers = {
  files: ['src/modules/**/*.ts', 'src/platform/**/*.ts', 'src/db/**/*.ts', 'src/errors.ts', 'src/config.ts'],
  ignores: ['src/**/*.routes.ts', 'src/**/*.openapi.ts'],
};
const repositories = ['src/modules/**/*.repository.ts'];
// A module's HTTP face: its routes and, for the redirect (a plain handler), its OpenAPI definition.
const routes = ['src/**/*.routes.ts', 'src/**/*.openapi.ts', 'src/http/**/*.ts'];
// What wires hop together outside the composition root; the adapter tests named here test one adapter each.
const wiring = { files: ['src/app.ts', 'src/runtimes/**/*.ts', 'src/cli/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts'],
  ignores: ['test/unit/**', 'test/integration/queue-redis.test.ts', 'test/integration/clicks.test.ts', 'test/workers/ratelimit.test.ts'] };
const launcher = ['bin/**/*.js'];
const launcherMessage =
  'bin/ must load on a Node too old for TypeScript, to say so: import the TypeScript CLI with import() after the version check.';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.wrangler/**', 'data/**', 'migrations/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  // Portable core (everything but runtimes/ and cli/): it runs on Workers too, so no Node built-in module,
  // no Buffer/process global, not even reached through globalThis/self/global or a dynamic import().
  { ...core, rules: portableRules },
  { files: workerEntry, rules: portableRules },
  // Wiring outside the composition root builds no service, store or queue (the portable ones keep their ban on built-ins).
  { ...wiring, rules: { 'no-restricted-imports': restrict(noConstruction) } },
  { files: ['src/app.ts', ...workerEntry], rules: { 'no-restricted-imports': restrict(nodeBuiltins, noConstruction) } },
  // Routes and the HTTP layer call services; they never reach the database directly.
  { files: routes, ignores: core.ignores, rules: { 'no-restricted-imports': restrict(nodeBuiltins, noDatabase, noConstruction) } },
  // Services, schemas, platform and db are below HTTP: no import of src/http/ or of a routes file. Their errors are
  // domain errors (src/errors.ts) that src/http/problem.ts alone maps to a status and headers.
  { ...lowerLayers, rules: { 'no-restricted-imports': restrict(nodeBuiltins, noHttp) } },
  // Repositories are the bottom of a module: below HTTP, and they do not call services either.
  { files: repositories, rules: { 'no-restricted-imports': restrict(nodeBuiltins, noHttp, noServices) } },
  // The launcher (bin/) is plain JavaScript that any Node reads: a static import of a .ts module would fail on an old
  // Node before the version check could run. It is linted as a Node script, undefined names included.
  {
    files: launcher,
    languageOptions: { sourceType: 'module', globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      'no-undef': 'error',
      'no-restricted-syntax': [
        'error',
        ...['ImportDeclaration', 'ExportAllDeclaration', 'ExportNamedDeclaration'].map((type) => ({
          selector: `${type}[source.value=/\\.[cm]?tsx?$/]`,
          message: launcherMessage,
        })),
      ],
    },
  },
);
