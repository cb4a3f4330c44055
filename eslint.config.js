// Lint: typescript-eslint's recommended rules plus the two architecture rules of hop.
import tseslint from 'typescript-eslint';

const nodeOnly = {
  paths: [
    { name: 'buffer', message: 'The portable core uses Uint8Array and TextEncoder, not Buffer.' },
    { name: 'process', message: 'Configuration reaches the core through createApp(deps), not process.' },
  ],
  patterns: [
    { group: ['node:*'], message: 'node:* modules belong in src/runtimes/ or src/cli/ only; the core is web-standard.' },
  ],
};

const noDatabase = [
  { group: ['drizzle-orm', 'drizzle-orm/*', '@libsql/*', '**/db/schema*', '**/platform/db/*', '**/*.repository*'],
    message: 'Routes call services; only repositories touch the database.' },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.wrangler/**', 'data/**', 'migrations/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/runtimes/**', 'src/cli/**'],
    rules: {
      'no-restricted-imports': ['error', nodeOnly],
      'no-restricted-globals': [
        'error',
        { name: 'Buffer', message: 'The portable core uses Uint8Array and TextEncoder, not Buffer.' },
        { name: 'process', message: 'Configuration reaches the core through createApp(deps), not process.env.' },
      ],
    },
  },
  {
    files: ['src/**/*.routes.ts', 'src/http/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { ...nodeOnly, patterns: [...nodeOnly.patterns, ...noDatabase] }],
    },
  },
);
