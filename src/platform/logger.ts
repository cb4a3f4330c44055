/**
 * Structured JSON logs, one object per line. Level and sampling are decided before anything is built,
 * so a filtered or sampled-out line costs a comparison and nothing more. A line written while a span is current
 * carries its trace_id and span_id (the runtime says which span is current: src/runtimes/scopes.ts).
 */
import { causeChain } from '../errors.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  enabled(level: Exclude<LogLevel, 'silent'>): boolean;
  log(level: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Where a finished line goes; console.log by default (works on every runtime). */
  write?: (line: string) => void;
  now?: () => Date;
  /** The span current where a line is written (a runtime's scope store): its ids go on the line. */
  span?: () => { traceId: string; spanId: string } | undefined;
}

export function createLogger(options: LoggerOptions): Logger {
  const min = rank[options.level];
  const write = options.write ?? ((line: string) => console.log(line));
  const now = options.now ?? (() => new Date());
  return {
    enabled: (level) => rank[level] >= min,
    log(level, msg, fields) {
      if (rank[level] < min) return;
      const span = options.span?.();
      const ids = span && { trace_id: span.traceId, span_id: span.spanId };
      write(JSON.stringify({ level, time: now().toISOString(), msg, ...ids, ...fields }));
    },
  };
}

/** Describes an unknown thrown value for a log line (never for a client). */
export function describeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { error: String(err) };
  // Wrappers (drizzle's "Failed query", libSQL's errors) keep the real reason in `cause`.
  const causes = [...causeChain(err.cause, 5)].map((c) => (c instanceof Error ? `${c.name}: ${c.message}` : String(c)));
  return { error: err.name, message: err.message, stack: err.stack, ...(causes.length ? { causes } : {}) };
}
