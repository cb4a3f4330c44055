/**
 * A picture of deploy/grafana/hop.json without a Grafana server, for the docs: each panel's queries run against a
 * Prometheus over its HTTP API (query_range), drawn as SVG in the dashboard's own grid, and the page screenshotted
 * by headless Chromium. A sketch of the layout and the data, not Grafana's look.
 *
 *   node deploy/grafana/render.ts http://127.0.0.1:9090 docs/images/dashboard.png [minutes, default 10]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Target {
  expr: string;
  legendFormat?: string;
}
interface Panel {
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  fieldConfig?: { defaults?: { unit?: string; thresholds?: { steps: { color: string; value: number | null }[] } } };
}
interface Series {
  metric: Record<string, string>;
  values: [number, string][];
}

const [promUrl, out, minutesArg] = process.argv.slice(2);
if (!promUrl || !out) {
  console.error('usage: node deploy/grafana/render.ts <prometheus url> <out.png> [minutes]');
  process.exit(2);
}
const minutes = Number(minutesArg ?? 10);
const dashboard = JSON.parse(readFileSync(new URL('./hop.json', import.meta.url), 'utf8')) as { title: string; panels: Panel[] };

const WIDTH = 1600;
const CELL_W = WIDTH / 24;
const CELL_H = 34;
const PALETTE = ['#73bf69', '#f2cc0c', '#5794f2', '#ff780a', '#f2495c', '#b877d9', '#8ab8ff', '#ffb357', '#96d98d', '#ca95e5'];
const COLORS: Record<string, string> = { green: '#73bf69', orange: '#ff9830', red: '#f2495c' };

const end = Math.floor(Date.now() / 1000);
const start = end - minutes * 60;
const step = Math.max(2, Math.round((minutes * 60) / 200));

// Grafana's variables: every job, and a rate interval of four scrapes at most (the test Prometheus scrapes each second).
const expand = (expr: string) => expr.replaceAll('$job', '.+').replaceAll('$__rate_interval', `${Math.max(4 * step, 15)}s`);

async function range(expr: string): Promise<Series[]> {
  const q = new URLSearchParams({ query: expand(expr), start: String(start), end: String(end), step: String(step) });
  const body = (await (await fetch(`${promUrl}/api/v1/query_range?${q}`)).json()) as { status: string; error?: string; data: { result: Series[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

const legend = (format: string | undefined, metric: Record<string, string>) =>
  (format ?? '').replace(/\{\{\s*(\w+)\s*\}\}/g, (_, l: string) => metric[l] ?? '').replace(/\s+/g, ' ').trim() || JSON.stringify(metric);

function format(v: number, unit: string | undefined): string {
  if (!Number.isFinite(v)) return '–';
  const round = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toPrecision(3).replace(/\.?0+$/, ''));
  switch (unit) {
    case 'percentunit':
      return `${round(v * 100)}%`;
    case 's':
      return v >= 1 ? `${round(v)} s` : v >= 0.001 ? `${round(v * 1000)} ms` : v === 0 ? '0' : `${round(v * 1e6)} µs`;
    case 'bytes':
      return v >= 2 ** 30 ? `${round(v / 2 ** 30)} GiB` : v >= 2 ** 20 ? `${round(v / 2 ** 20)} MiB` : `${round(v / 1024)} KiB`;
    case 'reqps':
      return `${round(v)} req/s`;
    case 'ops':
      return `${round(v)} /s`;
    default:
      return unit?.startsWith('suffix:') ? `${round(v)}${unit.slice(7)}` : round(v);
  }
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function timeseries(p: Panel, w: number, h: number): Promise<string> {
  const lines: { name: string; points: [number, number][] }[] = [];
  for (const t of p.targets ?? []) {
    for (const s of await range(t.expr)) {
      lines.push({ name: legend(t.legendFormat, s.metric), points: s.values.map(([ts, v]) => [ts, Number(v)] as [number, number]).filter(([, v]) => Number.isFinite(v)) });
    }
  }
  const unit = p.fieldConfig?.defaults?.unit;
  const plotW = w - 76;
  // The panel's height less its padding (12), title (20), the axis' margins (16) and the legend's rows (16 each).
  const plotH = h - 48 - Math.min(3, Math.ceil(Math.min(lines.length, 10) / 3)) * 16;
  const all = lines.flatMap((l) => l.points.map(([, v]) => v));
  const max = Math.max(...all, 0) * 1.1 || 1;
  const x = (ts: number) => 60 + ((ts - start) / (end - start)) * plotW;
  const y = (v: number) => 8 + plotH - (v / max) * plotH;
  let svg = '';
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg += `<line x1="60" x2="${60 + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#2c3235"/><text x="55" y="${y(v) + 4}" text-anchor="end">${esc(format(v, unit))}</text>`;
  }
  for (const step of p.fieldConfig?.defaults?.thresholds?.steps ?? []) {
    if (step.value !== null && step.value <= max) {
      svg += `<line x1="60" x2="${60 + plotW}" y1="${y(step.value)}" y2="${y(step.value)}" stroke="${COLORS[step.color] ?? step.color}" stroke-dasharray="6 4"/>`;
    }
  }
  lines.forEach((l, i) => {
    const pts = l.points.map(([ts, v]) => `${x(ts).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    svg += `<polyline fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.5" points="${pts}"/>`;
  });
  const legendHtml = lines
    .slice(0, 9)
    .map((l, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(l.name)}</span>`)
    .join('');
  const empty = lines.length === 0 ? '<div class="nodata">No data</div>' : '';
  return `<svg width="${w - 16}" height="${plotH + 16}">${svg}</svg>${empty}<div class="legend">${legendHtml}${lines.length > 9 ? `<span>+${lines.length - 9}</span>` : ''}</div>`;
}

async function stat(p: Panel): Promise<string> {
  const series = (await Promise.all((p.targets ?? []).map((t) => range(t.expr)))).flat();
  const last = series.map((s) => Number(s.values.at(-1)?.[1]));
  const v = last[0] ?? NaN;
  const steps = p.fieldConfig?.defaults?.thresholds?.steps ?? [];
  const color = steps.filter((s) => s.value === null || v >= s.value).at(-1)?.color ?? 'green';
  return `<div class="stat" style="color:${COLORS[color] ?? color}">${esc(format(v, p.fieldConfig?.defaults?.unit))}</div>`;
}

const bottom = Math.max(...dashboard.panels.map((p) => p.gridPos.y + p.gridPos.h));
let body = '';
for (const p of dashboard.panels) {
  const { x, y, w, h } = p.gridPos;
  const box = `left:${x * CELL_W + 4}px;top:${y * CELL_H + 44}px;width:${w * CELL_W - 8}px;height:${h * CELL_H - 8}px`;
  if (p.type === 'row') {
    body += `<div class="row" style="${box}">${esc(p.title)}</div>`;
    continue;
  }
  const inner = p.type === 'stat' ? await stat(p) : await timeseries(p, w * CELL_W - 8, h * CELL_H - 8);
  body += `<div class="panel" style="${box}"><div class="title">${esc(p.title)}</div>${inner}</div>`;
}
const height = bottom * CELL_H + 56;
const html = `<!doctype html><meta charset="utf-8"><style>
body{margin:0;background:#111217;color:#ccccdc;font:12px Inter,Helvetica,Arial,sans-serif;width:${WIDTH}px;height:${height}px;position:relative}
header{position:absolute;left:8px;top:10px;font-size:16px;color:#fff}
header small{color:#8e8e8e;font-size:12px;margin-left:12px}
.row{position:absolute;font-size:14px;font-weight:600;color:#fff;padding-top:6px}
.panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:2px;padding:6px 8px;box-sizing:border-box;overflow:hidden}
.title{font-weight:600;color:#fff;margin-bottom:4px}
svg text{fill:#8e8e8e;font-size:10px}
.legend span{display:inline-block;margin-right:10px;white-space:nowrap;font-size:11px}
.legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.stat{font-size:34px;font-weight:600;text-align:center;margin-top:12px}
.nodata{position:absolute;top:45%;width:100%;text-align:center;color:#8e8e8e}
</style><header>${esc(dashboard.title)}<small>deploy/grafana/hop.json: last ${minutes} minutes, drawn by deploy/grafana/render.ts from Prometheus</small></header>${body}`;

const dir = mkdtempSync(join(tmpdir(), 'hop-dashboard-'));
try {
  writeFileSync(join(dir, 'index.html'), html);
  const bin = process.env.HOP_CHROMIUM_BIN || 'chromium';
  execFileSync(bin, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--window-size=${WIDTH},${height}`, `--screenshot=${join(dir, 'shot.png')}`, `file://${join(dir, 'index.html')}`], {
    stdio: 'ignore',
    timeout: 60_000,
  });
  writeFileSync(out, readFileSync(join(dir, 'shot.png')));
  console.log(`${out}: ${dashboard.panels.length} panels, ${WIDTH}x${height}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
