/**
 * The raw click export as a byte stream: NDJSON (one JSON object per line) or CSV (RFC 4180: a header line, CRLF
 * line ends, fields quoted when they hold a quote, comma or line break). A CSV cell that a spreadsheet would run
 * as a formula (starting with =, +, -, @, tab or carriage return) is prefixed with an apostrophe. The stream
 * pulls one page at a time from the service, so memory stays bounded however many clicks a link has.
 */
import type { ExportedClick, ExportFormat } from './stats.schemas.ts';

const COLUMNS = ['id', 'at', 'country', 'device', 'browser', 'os', 'referrer', 'bot'] as const;

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  ndjson: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
};

export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

const csvLine = (click: ExportedClick) =>
  COLUMNS.map((c) => {
    const v = click[c];
    return v === null ? '' : csvCell(String(v));
  }).join(',');

export const CSV_HEADER = `${COLUMNS.join(',')}\r\n`;

export function encodePage(format: ExportFormat, page: ExportedClick[]): string {
  let out = '';
  if (format === 'csv') for (const click of page) out += `${csvLine(click)}\r\n`;
  else for (const click of page) out += `${JSON.stringify(click)}\n`;
  return out;
}

/**
 * Chooses the format from `Accept` when the query names none: text/csv or application/x-ndjson, by q-value
 * (ties and anything else: NDJSON).
 */
export function formatFromAccept(accept: string | undefined): ExportFormat {
  if (!accept) return 'ndjson';
  let best: ExportFormat = 'ndjson';
  let bestQ = 0;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find(Boolean);
    const weight = q ? Number(q[1]) : 1;
    const format = type.trim() === 'text/csv' ? 'csv' : type.trim() === 'application/x-ndjson' ? 'ndjson' : undefined;
    if (format && weight > bestQ) {
      best = format;
      bestQ = weight;
    } else if (format === 'ndjson' && weight === bestQ) {
      best = 'ndjson';
    }
  }
  return best;
}

/**
 * A byte stream of the export: the CSV header, then `first` and every further page `pages` yields, encoded as they
 * are read. Reading stops when the client goes away (cancel).
 */
export function exportStream(format: ExportFormat, first: ExportedClick[] | undefined, pages: AsyncIterator<ExportedClick[]>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let pending: string | undefined = (format === 'csv' ? CSV_HEADER : '') + (first ? encodePage(format, first) : '');
  let done = first === undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending !== undefined) {
        const chunk = pending;
        pending = undefined;
        if (chunk) controller.enqueue(encoder.encode(chunk));
        if (done) controller.close();
        return;
      }
      const next = await pages.next();
      if (next.done) {
        done = true;
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(encodePage(format, next.value)));
    },
    async cancel() {
      await pages.return?.();
    },
  });
}
