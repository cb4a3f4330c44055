/**
 * Summarises a V8 `.cpuprofile` (from `BENCH_CPU_PROF=<dir> npm run bench`, or any `node --cpu-prof` run):
 * self time grouped by where the code lives (hop's src/, each package in node_modules, Node internals, GC) and
 * the hottest functions by self time. Self time only: V8 samples synchronous stacks, so after an `await` the
 * caller is gone from the stack and inclusive time of async functions (a repository call, a route) would be
 * badly undercounted.
 * Usage: node bench/cpu-profile.ts <file.cpuprofile> [top N]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/cpu-profile.ts <file.cpuprofile> [top N]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));

// Self time per node: each sample's time delta belongs to the node on top of the stack.
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
const idleUs = profile.nodes
  .filter((n) => n.callFrame.functionName === '(idle)')
  .reduce((a, n) => a + (selfUs.get(n.id) ?? 0), 0);
const busyUs = totalUs - idleUs;

function area(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const src = /\/(src\/.*|bench\/.*)$/.exec(url);
  return src ? src[1]! : url;
}

const fn = (n: ProfileNode) =>
  `${n.callFrame.functionName || '(anonymous)'}  ${area(n)}:${n.callFrame.lineNumber + 1}`;

function add(map: Map<string, number>, key: string, us: number) {
  map.set(key, (map.get(key) ?? 0) + us);
}

const areas = new Map<string, number>();
const functions = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  const node = byId.get(id)!;
  if (node.callFrame.functionName === '(idle)') return;
  add(areas, area(node), us);
  add(functions, fn(node), us);
});

const pct = (us: number) => `${((us / busyUs) * 100).toFixed(1).padStart(5)}%`;
const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
const print = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`  ${pct(us)} ${ms(us)}  ${key}`);
};

console.log(`${file}\n  profiled ${ms(totalUs)}, busy ${ms(busyUs)} (${((busyUs / totalUs) * 100).toFixed(0)}%), idle ${ms(idleUs)}`);
console.log('  percentages below are of busy time');
print('self time by area', areas, top);
print('hottest functions (self time)', functions, top);
