/**
 * Global setup of the workerd test project: one local sqld, migrated, for the tests whose Worker needs a real
 * database (a Worker speaks libSQL over HTTP, and nothing inside workerd can start a process). Its URL reaches the
 * tests through `inject('hopSqldUrl')`; an empty URL means sqld is not installed (those tests are skipped with the
 * install hint; under CI=true the run fails here). Stopped by PID when the run ends.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { findSqld, SQLD_INSTALL_HINT, startSqld } from '../../src/cli/sqld.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The migrated sqld of the workerd project, or '' when sqld is not installed. */
    hopSqldUrl: string;
    /** Why there is no sqld, for the skipped tests' message. */
    hopSqldMissing: string;
  }
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export default async function setup(project: TestProject) {
  if (!findSqld()) {
    if (process.env.CI === 'true') throw new Error(`sqld is required under CI=true: ${SQLD_INSTALL_HINT}`);
    project.provide('hopSqldUrl', '');
    project.provide('hopSqldMissing', `sqld is not installed: ${SQLD_INSTALL_HINT}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hop-workers-sqld-'));
  const sqld = await startSqld({ dir: join(dir, 'data') });
  // Not detached: killed with this process even if the run is cut short before the teardown.
  process.once('exit', () => sqld.signal('SIGKILL'));
  const teardown = async () => {
    await sqld.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await promisify(execFile)(process.execPath, [join(ROOT, 'src/cli/hop.ts'), 'migrate'], {
      cwd: ROOT,
      env: { ...process.env, HOP_DATABASE_URL: sqld.url, HOP_LOG_LEVEL: 'warn' },
    });
  } catch (err) {
    await teardown();
    throw err;
  }
  project.provide('hopSqldUrl', sqld.url);
  project.provide('hopSqldMissing', '');
  return teardown;
}
