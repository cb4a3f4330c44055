/**
 * A real redis-server for tests (src/cli/redis-server.ts, which `npm run stack` uses too). `redisAvailable()` skips
 * tests where redis-server is not installed, with the install command, except under CI=true, where that is a failure.
 */
import { findRedisServer, REDIS_INSTALL_HINT } from '../../src/cli/redis-server.ts';

export * from '../../src/cli/redis-server.ts';

export function redisAvailable(): boolean {
  if (findRedisServer()) return true;
  if (process.env.CI === 'true') throw new Error(`redis-server is required under CI=true: ${REDIS_INSTALL_HINT}`);
  console.warn(`skipping tests that need redis-server: ${REDIS_INSTALL_HINT}`);
  return false;
}
