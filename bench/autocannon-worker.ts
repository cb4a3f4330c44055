/**
 * The fallback load generator when wrk is not installed: runs autocannon through its programmatic API in its
 * own process (so it gets its own core, not the harness's event loop), over the same precomputed path list
 * wrk would use, and prints one JSON result line in the same shape as bench/wrk-paths.lua.
 * Usage: node bench/autocannon-worker.ts <url> <connections> <seconds> <paths file> [Host header]
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

// autocannon ships no types; this is the part of its API the worker uses.
interface AutocannonResult {
  latency: { p50: number; p99: number; max: number };
  duration: number;
  errors: number;
  timeouts: number;
  '1xx': number;
  '2xx': number;
  '3xx': number;
  '4xx': number;
  '5xx': number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const [url, connections, seconds, pathsFile, host] = process.argv.slice(2);
if (!url || !connections || !seconds || !pathsFile) {
  console.error('usage: autocannon-worker.ts <url> <connections> <seconds> <paths file>');
  process.exit(2);
}
const paths = readFileSync(pathsFile, 'utf8').split('\n').filter(Boolean);
let position = 0;

const result = await autocannon({
  url,
  ...(host ? { headers: { host } } : {}),
  connections: Number(connections),
  duration: Number(seconds),
  requests: [
    {
      method: 'GET',
      setupRequest: (req: Record<string, unknown>) => {
        position = (position + 1) % paths.length;
        return { ...req, path: paths[position] };
      },
    },
  ],
});

const answered = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
// autocannon reports latency in milliseconds; the harness expects wrk's microseconds.
const us = (ms: number) => Math.round(ms * 1000);
console.log(
  'BENCH_RESULT ' +
    JSON.stringify({
      requests: answered,
      durationUs: Math.round(result.duration * 1e6),
      p50Us: us(result.latency.p50),
      p99Us: us(result.latency.p99),
      maxUs: us(result.latency.max),
      non3xx: answered - result['3xx'],
      // autocannon counts a timeout in `errors` too.
      errors: { connect: 0, read: result.errors - result.timeouts, write: 0, timeout: result.timeouts },
    }),
);
