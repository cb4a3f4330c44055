// vitest for the container image test alone (`npm run test:image`): it builds a base and an image with podman, which
// takes minutes, so it stays out of `npm test`; .ci/run runs it after `npm test`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/e2e/image.test.ts'],
    allowOnly: false,
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 1_200_000,
  },
});
