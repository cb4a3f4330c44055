/**
 * The redirect load generator shared by bench/redirect.ts and bench/shards.ts: wrk (one thread, over a paths file
 * through bench/wrk-paths.lua), or bench/autocannon-worker.ts in a child process where wrk is missing. Both print one
 * `BENCH_RESULT {json}` line, read here into a LoadResult.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export type Generator = 'wrk' | 'autocannon';

export interface LoadResult {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  non3xx: number;
  errors: { connect: number; read: number; write: number; timeout: number };
}

/** BENCH_GENERATOR, else wrk when installed (saying so when it is not); `refuse` builds the error for a bad value. */
export function pickGenerator(refuse: (message: string) => Error): Generator {
  const forced = process.env.BENCH_GENERATOR;
  if (forced === 'wrk' || forced === 'autocannon') return forced;
  if (forced) throw refuse('BENCH_GENERATOR must be wrk or autocannon');
  if (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status === 0) return 'wrk';
  console.log('wrk is not installed (`apt-get install -y wrk` gives it); falling back to autocannon in a child process.');
  return 'autocannon';
}

/** The command and arguments of one run against `url` (Host: localhost and its port) over the paths file. */
export function generatorCommand(root: string, generator: Generator, url: string, connections: number, seconds: number, pathsFile: string) {
  const host = `localhost:${new URL(url).port}`;
  if (generator === 'wrk') {
    // One wrk thread: the machine has two cores, one for the server under test and one for the generator.
    const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-H', `Host: ${host}`];
    return { command: 'wrk', args: [...args, '-s', join(root, 'bench/wrk-paths.lua'), url, '--', pathsFile] };
  }
  return { command: process.execPath, args: [join(root, 'bench/autocannon-worker.ts'), url, String(connections), String(seconds), pathsFile, host] };
}

/** The run's result from the generator's output; undefined when it printed none. */
export function parseResult(output: string): LoadResult | undefined {
  const line = output.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  return line ? (JSON.parse(line.slice('BENCH_RESULT '.length)) as LoadResult) : undefined;
}
