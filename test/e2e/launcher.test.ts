// The launcher as a user meets it: npm start, npm run hop/migrate and bin/hop.js on a Node too old to load TypeScript
// print what hop needs and exit 1 without a stack trace; on the current Node they reach the hop command.
import { execFile, execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runsHop } from '../../bin/node-version.js';

const exec = promisify(execFile);

/** The first Node binary on this machine that is too old for hop (the distribution's, typically), if any. */
function findOldNode(): { path: string; version: string } | undefined {
  const candidates = ['/usr/bin/node', '/usr/local/bin/node', ...(process.env.PATH ?? '').split(':').map((d) => `${d}/node`)];
  for (const path of new Set(candidates)) {
    try {
      const version = execFileSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
      if (!runsHop(version)) return { path, version };
    } catch {
      // not there, or not runnable
    }
  }
  return undefined;
}

const old = findOldNode();
// A machine without an old Node proves the launcher's behaviour on the current Node posing as 20.0.0 instead (the
// version check itself is covered in test/unit/node-version.test.ts); where one exists, the real binary runs.
const pose = "--import=data:text/javascript,Object.defineProperty(process,'versions',{value:{...process.versions,node:'20.0.0'}})";
const oldNode: { name: string; version: string; env: Record<string, string> } = old
  ? { name: `the real Node ${old.version} at ${old.path}`, version: old.version, env: { PATH: `${dirname(old.path)}:${process.env.PATH}` } }
  : { name: `Node ${process.versions.node} posing as 20.0.0`, version: '20.0.0', env: { NODE_OPTIONS: pose } };

// Were the check to let the server start, it would not touch the worktree, and the timeout would end it.
const safeEnv = { HOP_DATABASE_URL: 'file:/nonexistent/hop.db', PORT: '1' };

async function run(command: string, args: string[], env: Record<string, string>) {
  return exec(command, args, { env: { ...process.env, ...safeEnv, ...env }, timeout: 15_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
}

describe(`on ${oldNode.name}`, () => {
  it.each([
    ['npm start', 'npm', ['start']],
    ['npm run hop', 'npm', ['run', 'hop', '--', '--help']],
    ['npm run migrate', 'npm', ['run', 'migrate']],
    ['bin/hop.js', 'node', ['bin/hop.js', 'serve']],
  ])('%s says which Node hop needs and exits 1 without a stack trace', async (_name, command, args) => {
    const result = await run(command, args, oldNode.env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`this is Node ${oldNode.version}; hop needs Node 22.18 or newer`);
    expect(result.stderr).toContain('npm install --prefix');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION');
  });
});

describe(`on the current Node (${process.versions.node})`, () => {
  it('bin/hop.js hands over to the hop command', async () => {
    const result = await run(process.execPath, ['bin/hop.js', '--help'], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: hop');
    expect(result.stderr).toBe('');
  });

  it('bin/hop.js passes the hop command its exit status', async () => {
    const result = await run(process.execPath, ['bin/hop.js', 'no-such-command'], {});
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("unknown command 'no-such-command'");
  });
});
