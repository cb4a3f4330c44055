// vitest for the load tests alone (`npm run test:load`, run by .ci/run after `npm test`): bursts of thousands of
// writes on every runtime, a frozen and a killed primary (minutes), so they stay out of `npm test`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/load/**/*.test.ts'],
    allowOnly: false,
    pool: 'forks',
    // One file at a time: each test measures what one machine's primary takes.
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
