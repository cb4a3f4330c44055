/**
 * What tracing costs a redirect, in process (no network, so the figure is the app's own CPU): app.fetch of a cached
 * redirect, composed as the Node entry composes it, with tracing off (as today: no tracer, no span), off without
 * a scope store (the app before tracing existed), on with OTEL_TRACES_SAMPLER=always_off, and on and sampled
 * (exported to a local receiver that discards). `node bench/tracing.ts [iterations]`.
 */
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeForProcess } from '../src/composition/process.ts';
import { composeApp } from '../src/composition/root.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/platform/logger.ts';
import { migrateDatabase, openDatabase } from '../src/runtimes/database.ts';
import { createEmbeddedLookup } from '../src/runtimes/embedded-lookup.ts';
import { createScopes } from '../src/runtimes/scopes.ts';

const N = Number(process.argv[2] ?? 200_000);
const ROUNDS = 5;
const receiver = createServer((req, res) => req.resume().on('end', () => res.end('{}')));
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const collector = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

const variants: Array<{ name: string; env: Record<string, string>; scopes: boolean }> = [
  { name: 'off (default)', env: {}, scopes: true },
  { name: 'off, no scope store', env: {}, scopes: false },
  { name: 'on, always_off sampler', env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_TRACES_SAMPLER: 'always_off' }, scopes: true },
  { name: 'on, sampled, exported', env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_BSP_SCHEDULE_DELAY: '1000' }, scopes: true },
];

const dir = mkdtempSync(join(tmpdir(), 'hop-bench-tracing-'));
const rows: string[] = [];
try {
  const built = [];
  for (const [index, variant] of variants.entries()) {
    const path = join(dir, `${index}.db`);
    const config = loadConfig({ HOP_DATABASE_URL: `file:${path}`, HOP_LOG_LEVEL: 'warn', HOP_RATE_LIMIT: 'off', HOP_CLICKS: 'off', ...variant.env });
    const db = await openDatabase(config);
    await migrateDatabase(db);
    const lookup = createEmbeddedLookup(path);
    const scopes = variant.scopes ? createScopes() : undefined;
    const composed = composeForProcess(config, { db, redirectLookup: lookup, logger: createLogger({ level: 'warn' }), scopes });
    const app = composeApp(composed);
    const ws = await composed.services.workspaces.createWorkspace({ name: 'bench' }, new Date());
    await composed.services.links.create(
      { workspaceId: ws.id, actor: { type: 'cli' }, requestId: 'bench', now: () => new Date() },
      { url: 'https://example.com/', slug: 'b' } as never,
    );
    const request = new Request('http://localhost:8787/b', { headers: { host: 'localhost:8787' } });
    const once = async () => {
      const res = await app.fetch(request);
      if (res.status !== 302) throw new Error(`status ${res.status}`);
    };
    for (let i = 0; i < 20_000; i++) await once();
    built.push({ variant, once, composed, lookup, db, perOp: [] as number[] });
  }
  // Rounds alternate between the variants, so that the machine's drift and the JIT's warm-up fall on all of them.
  for (let round = 0; round < ROUNDS; round++) {
    for (const b of built) {
      const start = process.cpuUsage();
      for (let i = 0; i < N; i++) {
        await b.once();
        // Lets the exporter's requests and the receiver run, as a server's event loop would between requests.
        if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
      }
      const used = process.cpuUsage(start);
      b.perOp.push(((used.user + used.system) * 1000) / N);
    }
  }
  for (const b of built) {
    const perOp = b.perOp.sort((x, y) => x - y);
    rows.push(`| ${b.variant.name} | ${perOp[Math.floor(ROUNDS / 2)]!.toFixed(0)} ns | ${perOp[0]!.toFixed(0)}-${perOp.at(-1)!.toFixed(0)} ns | ${b.composed.tracer ? 'yes' : 'none'} |`);
    await b.composed.tracer?.flush();
    b.lookup.close();
    b.db.close();
  }
} finally {
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`CPU per cached redirect (app.fetch in process, ${N} per round, median of ${ROUNDS} rounds)\n`);
console.log('| tracing | median | range | tracer |\n|---|---|---|---|');
console.log(rows.join('\n'));
