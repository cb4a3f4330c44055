#!/usr/bin/env node
/**
 * The `hop` command: serve, consume, migrate, init, and operator tasks on workspaces and API keys. Configuration comes from
 * the same environment variables as the server (see README), validated by the same schema.
 */
import { createMetrics } from '../platform/metrics.ts';
import { listenForMetrics } from '../runtimes/metrics-listener.ts';
import { collectProcessMetrics } from '../runtimes/process-metrics.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import { prettifyError, ZodError } from 'zod';
import { loadConfig, loadServerConfig, ConfigError, type Config } from '../config.ts';
import { AppError, errorCodes, isBusy } from '../errors.ts';
import { scopes as allScopes, type Scope, type ServiceContext } from '../modules/context.ts';
import { CreateApiKeySchema, CreateWorkspaceSchema } from '../modules/workspaces/workspaces.schemas.ts';
import type { Services } from '../composition/root.ts';
import { redriveClicks } from '../composition/clicks.ts';
import { composeForProcess, composeProcess } from '../composition/process.ts';
import { createLogger } from '../platform/logger.ts';
import { closeShards, migrateDatabase, openDatabase, openShards } from '../runtimes/database.ts';
import type { ShardSet } from '../platform/db/shards.ts';
import { ReshardError } from '../platform/db/reshard.ts';
import { openProcessDatabase } from '../runtimes/server.ts';
import { createScopes } from '../runtimes/scopes.ts';
import type { Tracer } from '../platform/tracing.ts';
import { announceKey, main as serveNode } from '../runtimes/node.ts';
import { describeReport, parseShardList, runReshard, type ReshardCommandOptions } from './reshard.ts';

/** Runs `run` with services over HOP_DATABASE_URL; migrates first when asked or when the database is embedded. */
async function withServices<T>(
  run: (s: Services, config: Config) => Promise<T>,
  { migrate = false } = {},
) {
  const config = loadConfig(process.env);
  const db = await openDatabase(config);
  let shards: ShardSet | undefined;
  try {
    if (migrate || db.mode === 'embedded') await migrateDatabase(db);
    shards = await openShards(config, db, { migrate });
    return await run(composeForProcess(config, { db, shards }).services, config);
  } finally {
    closeShards(shards);
    db.close();
  }
}

function parseScopes(value: string): Scope[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.filter((s) => !(allScopes as readonly string[]).includes(s));
  if (bad.length || !list.length) {
    throw new InvalidArgumentError(`scopes must be a comma-separated list of: ${allScopes.join(', ')}`);
  }
  return list as Scope[];
}

function parsePositive(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new InvalidArgumentError(`${name} must be a whole number from 1 to 1000000`);
  return n;
}

const cliContext = (workspaceId: string): ServiceContext => ({
  workspaceId,
  actor: { type: 'cli' },
  requestId: `cli-${crypto.randomUUID()}`,
  now: () => new Date(),
});

const print = (json: boolean, value: unknown, text: string) => console.log(json ? JSON.stringify(value) : text);

const program = new Command('hop')
  .description('hop: short links and click analytics on Workers, Node and Bun')
  .showHelpAfterError();

program
  .command('serve')
  .description('serve the API on PORT (default 8787); migrates and bootstraps an embedded database')
  .option('--workers <n|auto>', 'server processes under one supervisor, auto: one per core (default HOP_WORKERS, 1)')
  .addOption(
    new Option('--role <role>', 'what to serve: redirect (short links), api (/v1, /docs, /openapi.json) or all (default: HOP_ROLE, else all)')
      .choices(['redirect', 'api', 'all']),
  )
  .action((opts: { workers?: string; role?: string }) =>
    serveNode({
      ...process.env,
      ...(opts.workers === undefined ? {} : { HOP_WORKERS: opts.workers }),
      ...(opts.role ? { HOP_ROLE: opts.role } : {}),
    }),
  );

program
  .command('consume')
  .description('consume the Redis Streams click queue (HOP_QUEUE=redis) without serving HTTP; SIGTERM finishes the batch in hand')
  .action(async () => {
    const config = loadServerConfig(process.env);
    if (config.queue !== 'redis') {
      throw new ConfigError([{ variable: 'HOP_QUEUE', message: 'hop consume needs HOP_QUEUE=redis (the in-process queue is consumed by the server)' }]);
    }
    const scopes = createScopes();
    const logger = createLogger({ level: config.logLevel, span: () => scopes.get()?.span });
    const { db, shards, consumerName } = await openProcessDatabase(config, logger, process.env, 'consume', undefined, scopes);
    let tracer: Tracer | undefined;
    // Its metrics (clicks ingested, lag, the stream's backlog, the process) on HOP_METRICS_ADDR: it has no other port.
    const metrics = createMetrics();
    const stopSampling = config.metrics.enabled ? await collectProcessMetrics(metrics) : () => {};
    const listener = config.metrics.listen ? await listenForMetrics(config.metrics.listen, () => metrics.render(), logger) : undefined;
    try {
      // The servers' memory tiers expire on their own (HOP_CACHE_TTL_S, 1 s for links with maxClicks); the shared one is told.
      const composed = await composeProcess(config, { db, shards, logger, consumerName, scopes, metrics }, 'consume');
      const { clicks } = composed;
      tracer = composed.tracer;
      logger.log('info', 'consuming', { clicks: clicks!.description, stream: config.clickStream.key });
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      logger.log('info', 'shutting down', { signal });
      await clicks!.close();
    } finally {
      await listener?.close();
      stopSampling();
      closeShards(shards);
      db.close();
      await tracer?.flush();
    }
  });

program
  .command('redrive')
  .description(
    'put the Redis click queue\'s dead letters back on the stream (HOP_QUEUE=redis): by default those given up after ' +
      'HOP_QUEUE_MAX_DELIVERIES (storage failed them), not those refused for what they are',
  )
  .option('--all', 'also the messages that were refused (not JSON, not a click event): they will be refused again')
  .option('--limit <n>', 'dead letters looked at, oldest first', (v) => parsePositive(v, '--limit'), 1000)
  .option('--json', 'print JSON')
  .action(async (opts: { all?: boolean; limit: number; json?: boolean }) => {
    const config = loadServerConfig(process.env);
    if (config.queue !== 'redis' || !config.redis) {
      throw new ConfigError([{ variable: 'HOP_QUEUE', message: 'hop redrive needs HOP_QUEUE=redis (the in-process queue keeps no dead letters)' }]);
    }
    const { key, deadLetterKey } = config.clickStream;
    const result = await redriveClicks(config, { limit: opts.limit, all: !!opts.all });
    print(!!opts.json, result, `${result.redriven} dead letters put back on ${key}; ${result.kept} kept in ${deadLetterKey}`);
  });

program
  .command('migrate')
  .description('apply pending migrations to HOP_DATABASE_URL and to every shard of HOP_DATABASE_SHARDS')
  .action(async () => {
    const config = loadConfig(process.env);
    const db = await openDatabase(config);
    try {
      await migrateDatabase(db);
      console.log(`migrations applied to ${config.databaseUrl.replace(/\?.*$/, '')}`);
      closeShards(await openShards(config, db, { migrate: true }));
      for (const url of config.databaseShards ?? []) console.log(`migrations applied to shard ${url.replace(/\?.*$/, '')}`);
    } finally {
      db.close();
    }
  });

program
  .command('init')
  .description('migrate, and on an empty database create the default workspace and print its admin key')
  .action(async () => {
    await withServices(
      async (services, config) => {
        const created = await services.workspaces.bootstrapDefaultWorkspace(new Date());
        if (created) announceKey(config, created);
        else console.log('hop is already initialised: the database has a workspace.');
      },
      { migrate: true },
    );
  });

program
  .command('reshard')
  .description('move links between shards while hop serves: --to is the full new shard list; rerun to resume after an interruption')
  .requiredOption('--to <urls>', 'comma-separated shard URLs (file:, libsql://, http(s)://), the full new list', parseShardList)
  .option('--grace-ms <ms>', 'wait for running processes to see a freeze or a flip (default: from the database deadlines)', (v) => parsePositive(v, '--grace-ms'))
  .option('--wave <buckets>', 'buckets frozen and moved together', (v) => parsePositive(v, '--wave'))
  .option('--parallel <n>', 'copy batches in flight at once', (v) => parsePositive(v, '--parallel'))
  .option('--json', 'print JSON')
  .action(async (opts: ReshardCommandOptions) => {
    const report = await runReshard(opts);
    print(!!opts.json, report, describeReport(report));
  });

const workspaces = program.command('workspaces').description('manage workspaces');
workspaces
  .command('create')
  .description('create a workspace and print its admin API key (shown once)')
  .requiredOption('--name <name>', 'workspace name')
  .option('--json', 'print JSON')
  .action(async (opts: { name: string; json?: boolean }) => {
    const input = CreateWorkspaceSchema.parse({ name: opts.name });
    await withServices(async (services) => {
      const created = await services.workspaces.createWorkspace(input, new Date());
      print(!!opts.json, created, `workspace ${created.id} "${created.name}"\nadmin key (shown once): ${created.apiKey.key}`);
    });
  });

const keys = program.command('keys').description('manage API keys');
keys
  .command('create')
  .description('create an API key in a workspace and print it (shown once)')
  .requiredOption('--workspace <id>', 'workspace id')
  .requiredOption('--name <name>', 'key name')
  .requiredOption('--scopes <list>', `comma-separated: ${allScopes.join(', ')}`, parseScopes)
  .option('--json', 'print JSON')
  .action(async (opts: { workspace: string; name: string; scopes: Scope[]; json?: boolean }) => {
    const input = CreateApiKeySchema.parse({ name: opts.name, scopes: opts.scopes });
    await withServices(async (services) => {
      const ctx = cliContext(opts.workspace);
      await services.workspaces.getWorkspace(ctx);
      const created = await services.workspaces.createKey(ctx, input);
      print(!!opts.json, created, `key ${created.id} (${created.scopes.join(', ')})\nsecret (shown once): ${created.key}`);
    });
  });

keys
  .command('revoke')
  .description('revoke an API key; effective on its next request')
  .argument('<id>', 'key id')
  .requiredOption('--workspace <id>', 'workspace id')
  .action(async (id: string, opts: { workspace: string }) => {
    await withServices(async (services) => {
      await services.workspaces.revokeKey(cliContext(opts.workspace), id);
      console.log(`key ${id} revoked`);
    });
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError) console.error(err.message);
  else if (err instanceof AppError) console.error(`hop: ${errorCodes[err.code].title} ${err.message}`);
  else if (err instanceof ZodError) console.error(`hop: invalid input:\n${prettifyError(err)}`);
  else if (err instanceof ReshardError) console.error(`hop reshard: ${err.message}`);
  else if (isBusy(err)) console.error('hop: the database is busy (another process holds its lock); try again.');
  else console.error(`hop: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
