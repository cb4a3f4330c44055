// The hop command as an operator runs it: init, workspaces create, keys create and revoke, migrate, bad input.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compose, composeApp } from '../../src/composition/root.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/runtimes/database.ts';

const exec = promisify(execFile);
let dir: string;
let env: Record<string, string>;

async function hop(...args: string[]) {
  return exec('node', ['src/cli/hop.ts', ...args], { env: { ...process.env, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
}

async function appOnSameDatabase() {
  const config = loadConfig(env);
  const db = await openDatabase(config);
  return { app: composeApp(compose(config, { db })), db };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hop-cli-'));
  env = { HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}` };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each case starts node on the CLI's TypeScript: seconds apiece while the rest of the suite loads both cores.
describe('hop CLI', { timeout: 60_000 }, () => {
  it('init creates the default workspace once and prints its key once', async () => {
    const first = await hop('init');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/export HOP_KEY=hop_[0-9A-Za-z]{43}/);
    const second = await hop('init');
    expect(second.code).toBe(0);
    expect(second.stdout).not.toMatch(/hop_[0-9A-Za-z]{43}/);
    expect(second.stdout).toContain('already initialised');
  });

  it('creates a workspace, issues a scoped key that works, and revokes it', async () => {
    const ws = await hop('workspaces', 'create', '--name', 'acme', '--json');
    expect(ws.code).toBe(0);
    const workspace = JSON.parse(ws.stdout) as { id: string; apiKey: { key: string } };

    const k = await hop('keys', 'create', '--workspace', workspace.id, '--name', 'reader', '--scopes', 'links:read', '--json');
    expect(k.code).toBe(0);
    const key = JSON.parse(k.stdout) as { id: string; key: string; scopes: string[] };
    expect(key.scopes).toEqual(['links:read']);

    const { app, db } = await appOnSameDatabase();
    try {
      const auth = { authorization: `Bearer ${key.key}` };
      expect((await app.request('/v1/links', { headers: auth })).status).toBe(200);
      expect((await app.request('/v1/links', { method: 'POST', headers: auth })).status).toBe(403);

      const revoked = await hop('keys', 'revoke', key.id, '--workspace', workspace.id);
      expect(revoked.code).toBe(0);
      expect((await app.request('/v1/links', { headers: auth })).status).toBe(401);
    } finally {
      db.close();
    }
  });

  it.each([
    [['keys', 'create', '--workspace', 'ws_x', '--name', 'k', '--scopes', 'root'], /scopes must be/],
    [['keys', 'create', '--workspace', 'ws_nope', '--name', 'k', '--scopes', 'links:read'], /No such workspace/],
    [['keys', 'revoke', 'key_nope', '--workspace', 'ws_nope'], /No such API key/],
    [['workspaces', 'create', '--name', ''], /invalid input/],
    [['workspaces', 'create'], /required option/],
    [['frobnicate'], /unknown command/],
  ])('refuses %j with a clear message and exit code 1', async (args, message) => {
    const result = await hop(...args);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  it('migrate is idempotent', async () => {
    const result = await hop('migrate');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('migrations applied');
  });
});
