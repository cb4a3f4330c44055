/**
 * Structured JSON logs, one object per line. Level and sampling are decided before anything is built,
 * so a filtered or sampled-out line costs a comparison and nothing more.
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
}

export function createLogger(options: LoggerOptions): Logger {
  const min = rank[options.level];
  const write = options.write ?? ((line: string) => console.log(line));
  const now = options.now ?? (() => new Date());
  return {
    enabled: (level) => rank[level] >= min,
    log(level, msg, fields) {
      if (rank[level] < min) return;
      write(JSON.stringify({ level, time: now().toISOString(), msg, ...fields }));
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
