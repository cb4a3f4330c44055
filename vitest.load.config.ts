// vitest for the load tests alone (`npm run test:load`): bursts of thousands of writes on every runtime, a frozen and
// a killed primary (minutes), so they stay out of `npm test`. Not yet in .ci/run: on a loaded machine the sqld bursts
// still answer some writes 503 past the 2 s deadline (the open issue on a remote primary).
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
