// vitest: two projects. "node": unit, integration, end-to-end and black-box tests in parallel forks (the latter two
// start real hop processes). "workerd": Worker-only behaviour (bindings, configuration errors) inside workerd
// through @cloudflare/vitest-plugin, configured from wrangler.toml, with a local sqld where a test needs a database.
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    allowOnly: false,
    // Two test files at once: most files wait on the processes they start (hop, sqld, Redis, workerd), and vitest's
    // default on two cores (one less than the cores) ran the suite one file at a time.
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
          // The image test builds a container image (minutes): `npm run test:image` runs it (vitest.image.config.ts);
          // the load tests send thousands of writes (minutes): `npm run test:load` (vitest.load.config.ts).
          exclude: ['test/workers/**', '**/node_modules/**', 'test/e2e/image.test.ts', 'test/load/**'],
          pool: 'forks',
          testTimeout: 20_000,
          hookTimeout: 60_000,
          allowOnly: false,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            // workerd without --verbose (the plugin's default turns it on): several tests point the Worker at a database
            // that refuses connections (127.0.0.1:9) on purpose, and at its verbose (INFO) level workerd logs each
            // refused subrequest as "uncaught exception ... Network connection lost" with a native stack, although the
            // Worker handles the rejected fetch (the tests check its 503). Without it workerd still logs warnings and
            // errors, and a rejection the Worker really leaves unhandled still fails the run through vitest.
            verbose: false,
          }),
        ],
        test: {
          name: 'workerd',
          include: ['test/workers/**/*.test.ts'],
          // A migrated sqld for the Worker's database (test/workers/cache.test.ts); nothing in workerd can start it.
          globalSetup: ['./test/support/workers-sqld.ts'],
          testTimeout: 20_000,
          allowOnly: false,
        },
      },
    ],
  },
});
