/**
 * `npm run bench:steady`: steady traffic on the embedded file and on one sqld primary, reached over HTTP
 * (`http://`, target `sqld`) and over a WebSocket (`libsql://…?tls=0`, target `sqld-ws`), open loop (requests are sent
 * on schedule whatever the answers' pace, as users send them): BENCH_STEADY_RATE requests/s (1,500) for
 * BENCH_STEADY_SECONDS (180), 90% redirects over 300 links, 7% reads (a link by id, a page of the list), 2% creates,
 * 1% deletes of links this run created. The same traffic runs BENCH_STEADY_WARMUP_S (10) first, from hop's start:
 * its errors count like any others, its latencies are printed on a row of their own and left out of the steady
 * percentiles (a process's first seconds, its code not yet compiled and its cache empty, are not steady traffic).
 * Printed per target: requests sent, errors (any answer but the expected one, or a failed request), p50/p99/max per
 * kind and overall, hop's peak RSS; then each sqld target's p99 over the file's. The target (issue 20): 0 errors on
 * every target, sqld's p99 within twice the file's.
 *
 * Exits non-zero when the harness fails or any request erred, never because a ratio is missed.
 * Environment: BENCH_STEADY_TARGETS (`file,sqld,sqld-ws`), BENCH_STEADY_RATE, BENCH_STEADY_SECONDS, BENCH_STEADY_WARMUP_S.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSqld, webSocketUrl, type Sqld } from '../src/cli/sqld.ts';
import { hopProcesses } from './hop-process.ts';
import { prng } from './mix.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const ADMIN = 's'.repeat(40);
const TARGETS = (process.env.BENCH_STEADY_TARGETS ?? 'file,sqld,sqld-ws').split(',').map((s) => s.trim());
const RATE = Number(process.env.BENCH_STEADY_RATE ?? 1500);
const SECONDS = Number(process.env.BENCH_STEADY_SECONDS ?? 180);
const WARMUP_S = Number(process.env.BENCH_STEADY_WARMUP_S ?? 10);
const LINKS = 300;
const TICK_MS = 20;
/** Connections the generator keeps open to hop (a browser fleet's worth for one host). */
const CONNECTIONS = 256;
const KINDS = ['redirect', 'read', 'create', 'delete'] as const;
type Kind = (typeof KINDS)[number];

const { startHop, stopHop, peakMb, HarnessError } = hopProcesses(ROOT, ADMIN);

/*
 * The generator's client: node:http over a fixed pool of keep-alive connections, as a load tool holds them. fetch
 * cost the generator several times hop's CPU per request, and under a backlog it opened connections without bound
 * and itself became what was measured (a run at 1,500 requests/s on sqld spun the generator at full CPU for minutes
 * with 1.9 GB resident, hop idle). A request waits for a free connection in the pool; that wait counts in its time.
 */
const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
interface Answer {
  status: number;
  body: string;
}
function call(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

interface Outcome {
  latencies: Record<Kind, number[]>;
  /** Every kind's latencies during the warm-up. */
  warmup: number[];
  errors: Map<string, number>;
  sent: number;
  peakMb: number;
  /** The click queue's counts from hop's /metrics at the end (batches, failures, high-water mark). */
  queue: string;
  /** The tail of hop's log, printed when a request erred. */
  log: string;
}

/** hop's click-queue series, one line: what its consumer did under the load. */
async function queueCounts(url: string): Promise<string> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const pick = (series: string) => text.split('\n').find((l) => l.startsWith(series))?.split(' ').at(-1) ?? '-';
  return [
    `batches failed ${pick('hop_click_queue_failures_total')}`,
    `largest batch ${pick('hop_click_queue_batch_max')}`,
    `most buffered ${pick('hop_click_queue_buffered_max')}`,
    `refused ${pick('hop_click_queue_events_total{queue="memory",result="refused"}')}`,
  ].join(', ');
}

async function steady(url: string): Promise<Omit<Outcome, 'peakMb' | 'queue' | 'log'>> {
  const made = await fetch(`${url}/v1/workspaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'steady' }),
  });
  if (made.status !== 201) throw new HarnessError(`workspace: ${made.status} ${await made.text()}`);
  const key = ((await made.json()) as { apiKey: { key: string } }).apiKey.key;
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const ids: string[] = [];
  for (let i = 0; i < LINKS; i++) {
    const res = await fetch(`${url}/v1/links`, { method: 'POST', headers, body: JSON.stringify({ url: `https://example.com/steady/${i}`, slug: `steady-${i}` }) });
    if (res.status !== 201) throw new HarnessError(`seed link ${i}: ${res.status} ${await res.text()}`);
    ids.push(((await res.json()) as { id: string }).id);
  }
  const created: string[] = [];
  const latencies = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
  const warmup: number[] = [];
  const errors = new Map<string, number>();
  // Seeded: every run sends the same sequence of kinds.
  const random = prng(7);
  const send = async (kind: Kind, n: number) => {
    const start = performance.now();
    const warming = start - started < WARMUP_S * 1000;
    const record = () => (warming ? warmup : latencies[kind]).push(performance.now() - start);
    let problem: string | undefined;
    try {
      let res: Answer;
      if (kind === 'redirect') {
        res = await call(url, 'GET', `/steady-${n % LINKS}`);
        if (res.status < 300 || res.status > 399) problem = `${res.status}`;
      } else if (kind === 'read') {
        res = await call(url, 'GET', n % 2 ? `/v1/links/${ids[n % LINKS]}` : '/v1/links?limit=20', headers);
        if (res.status !== 200) problem = `${res.status}`;
      } else if (kind === 'create') {
        res = await call(url, 'POST', '/v1/links', headers, JSON.stringify({ url: `https://example.com/new/${n}`, tags: ['steady'] }));
        if (res.status === 201) {
          created.push((JSON.parse(res.body) as { id: string }).id);
          return void record();
        }
        problem = `${res.status}`;
      } else {
        const id = created.shift();
        if (!id) return;
        res = await call(url, 'DELETE', `/v1/links/${id}`, headers);
        if (res.status !== 204) problem = `${res.status}`;
      }
      if (problem) problem += ` ${res.body.slice(0, 120)}`;
    } catch (err) {
      problem = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    record();
    if (problem) errors.set(`${kind} ${problem}`, (errors.get(`${kind} ${problem}`) ?? 0) + 1);
  };
  const inFlight = new Set<Promise<void>>();
  const perTick = (RATE * TICK_MS) / 1000;
  const started = performance.now();
  let sent = 0;
  for (let tick = 0; tick * TICK_MS < (WARMUP_S + SECONDS) * 1000; tick++) {
    // Open loop: each tick sends what is due by now, however late the previous answers are.
    const due = Math.floor((tick + 1) * perTick) - Math.floor(tick * perTick);
    for (let i = 0; i < due; i++) {
      const r = random();
      const kind: Kind = r < 0.9 ? 'redirect' : r < 0.97 ? 'read' : r < 0.99 ? 'create' : 'delete';
      const p = send(kind, sent++).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    const wait = started + (tick + 1) * TICK_MS - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(inFlight);
  return { latencies, warmup, errors, sent };
}

async function benchTarget(target: string): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), `hop-bench-steady-${target}-`));
  let sqld: Sqld | undefined;
  try {
    if (target === 'sqld' || target === 'sqld-ws') sqld = await startSqld({ dir: join(dir, 'sqld') });
    else if (target !== 'file') throw new HarnessError(`unknown target ${target} (file, sqld, sqld-ws)`);
    const url = !sqld ? `file:${join(dir, 'hop.db')}` : target === 'sqld' ? sqld.url : webSocketUrl(sqld.url);
    const hop = await startHop(url);
    try {
      const outcome = await steady(hop.url);
      return { ...outcome, peakMb: peakMb(hop.child.pid!), queue: await queueCounts(hop.url), log: hop.log() };
    } finally {
      await stopHop(hop.child);
    }
  } finally {
    await sqld?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const f = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const results = new Map<string, Outcome>();
for (const target of TARGETS) {
  results.set(target, await benchTarget(target));
  console.error(`${target}: done`);
}

console.log(`\nbench:steady: ${RATE} requests/s for ${SECONDS} s after ${WARMUP_S} s of warm-up, open loop (${new Date().toISOString()})`);
console.log('target   kind      count   p50 ms  p99 ms  max ms  errors');
const p99s = new Map<string, number>();
for (const [target, o] of results) {
  const all = KINDS.flatMap((k) => o.latencies[k]).sort((a, b) => a - b);
  p99s.set(target, quantile(all, 0.99));
  for (const kind of [...KINDS, 'all'] as const) {
    const sorted = kind === 'all' ? all : [...o.latencies[kind]].sort((a, b) => a - b);
    const errs = [...o.errors].filter(([k]) => kind === 'all' || k.startsWith(`${kind} `)).reduce((n, [, c]) => n + c, 0);
    console.log(
      `${target.padEnd(7)}  ${kind.padEnd(8)}  ${String(sorted.length).padStart(6)}  ${f(quantile(sorted, 0.5)).padStart(6)}  ` +
        `${f(quantile(sorted, 0.99)).padStart(6)}  ${f(sorted.at(-1) ?? NaN).padStart(6)}  ${String(errs).padStart(6)}`,
    );
  }
  const warm = [...o.warmup].sort((a, b) => a - b);
  console.log(
    `${target.padEnd(7)}  warm-up   ${String(warm.length).padStart(6)}  ${f(quantile(warm, 0.5)).padStart(6)}  ` +
      `${f(quantile(warm, 0.99)).padStart(6)}  ${f(warm.at(-1) ?? NaN).padStart(6)}  (errors above)`,
  );
  console.log(`${target.padEnd(7)}  sent ${o.sent}, peak RSS ${f(o.peakMb, 0)} MB; click queue: ${o.queue}`);
  for (const [reason, n] of o.errors) console.log(`  ${target} error ${n}: ${reason}`);
  if (o.errors.size) console.error(`${target}: the end of hop's log:\n${o.log}`);
}
for (const remote of ['sqld', 'sqld-ws']) {
  if (p99s.has('file') && p99s.has(remote)) console.log(`${remote} p99 / file p99: ${f(p99s.get(remote)! / p99s.get('file')!, 2)} (target ≤ 2)`);
}
const errors = [...results.values()].reduce((n, o) => n + [...o.errors.values()].reduce((a, b) => a + b, 0), 0);
if (errors > 0) {
  console.error(`\n${errors} requests erred`);
  process.exit(1);
}
