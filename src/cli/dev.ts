/**
 * `npm run dev`: hop as Workers on http://localhost:8787, offline. Starts a local sqld (data in data/dev-sqld),
 * applies the migrations, creates the default workspace on first run (its admin key printed once, as `npm start`
 * does), then runs one `wrangler dev` with both Workers against that sqld: the redirect and API Worker
 * (wrangler.toml, serving the port) and the click consumer (wrangler.consumer.toml), which share the session's local
 * queue, so clicks are stored as in production. Ctrl-C stops everything.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../config.ts';
import { compose } from '../composition/root.ts';
import { migrateDatabase, openDatabase } from '../runtimes/database.ts';
import { announceKey } from '../runtimes/server.ts';
import { SQLD_INSTALL_HINT, findSqld, startSqld } from './sqld.ts';

export function wranglerBin(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
}

async function main() {
  if (!findSqld()) {
    console.error(`npm run dev needs sqld, the libSQL server: ${SQLD_INSTALL_HINT}`);
    process.exit(1);
  }
  const port = process.env.PORT ?? '8787';
  const dir = resolve(process.env.HOP_DEV_SQLD_DIR ?? 'data/dev-sqld');
  const sqld = await startSqld({ dir });
  const stopAll = async (code: number) => {
    await sqld.stop();
    process.exit(code);
  };

  let config;
  try {
    config = loadConfig({ ...process.env, PORT: port, HOP_DATABASE_URL: sqld.url, HOP_DATABASE_SYNC_URL: undefined });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return stopAll(1);
    }
    throw err;
  }
  const db = await openDatabase(config);
  try {
    await migrateDatabase(db);
    const created = await compose(config, { db }).services.workspaces.bootstrapDefaultWorkspace(new Date());
    if (created) announceKey(config, created);
  } finally {
    db.close();
  }
  console.log(
    `dev: sqld ${sqld.url} (data in ${dir}); starting wrangler dev on http://localhost:${port} ` +
      '(redirect Worker, and the click consumer beside it; its hourly purge is not triggered locally)',
  );
  const root = fileURLToPath(new URL('../../', import.meta.url));
  if (existsSync(join(root, '.dev.vars'))) {
    console.warn('dev: .dev.vars exists, so the click consumer reads HOP_DATABASE_URL from it, not this sqld\'s URL');
  }

  // Only what differs from wrangler.toml's [vars] is passed; secrets a developer exported (HOP_ADMIN_TOKEN) too.
  const vars = [`HOP_DATABASE_URL:${sqld.url}`, `HOP_BASE_URL:${config.baseUrl}`];
  for (const name of ['HOP_ADMIN_TOKEN', 'HOP_LOG_LEVEL', 'HOP_DATABASE_TIMEOUT_MS']) {
    if (process.env[name]) vars.push(`${name}:${process.env[name]}`);
  }
  const configs = ['wrangler.toml', 'wrangler.consumer.toml'].flatMap((file) => ['-c', join(root, file)]);
  const wrangler = spawn(
    process.execPath,
    [wranglerBin(), 'dev', ...configs, '--ip', '127.0.0.1', '--port', port, '--env', '', ...vars.flatMap((v) => ['--var', v])],
    {
      stdio: 'inherit',
      env: {
        ...process.env,
        // `--var` reaches only the first Worker of the session; the consumer reads its database (a required secret
        // in wrangler.consumer.toml) and its vars (HOP_LOG_LEVEL...) from the environment.
        HOP_DATABASE_URL: sqld.url,
        // Offline: no request.cf lookups and no telemetry.
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        WRANGLER_SEND_METRICS: 'false',
      },
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => wrangler.kill(signal));
  }
  // Whatever ends this process, neither child outlives it.
  process.once('exit', () => {
    wrangler.kill('SIGKILL');
    sqld.signal('SIGKILL');
  });
  wrangler.once('exit', (code, signal) => void stopAll(code ?? (signal ? 0 : 1)));
}

await main();
