/**
 * hop's one error model below HTTP. Services and adapters throw `AppError`: a code, a message, the invalid fields
 * and facts a caller can act on (how long to wait before retrying), all as data. Nothing here knows HTTP: the HTTP
 * layer (src/http/problem.ts) alone turns a code into a status and the data into problem+json and headers, and the
 * CLI prints the same error as a line.
 */

/** Each code with its title, the one-line summary a client or an operator sees. */
export const errorCodes = {
  validation: { title: 'Your request is not valid.' },
  malformed_json: { title: 'The request body is not valid JSON.' },
  bad_request: { title: 'Bad request.' },
  unauthorized: { title: 'Authentication required.' },
  forbidden: { title: 'Not allowed.' },
  not_found: { title: 'Not found.' },
  method_not_allowed: { title: 'Method not allowed.' },
  conflict: { title: 'Conflict.' },
  idempotency_in_progress: { title: 'A request with this Idempotency-Key is still in progress.' },
  link_gone: { title: 'This link is no longer available.' },
  payload_too_large: { title: 'The request body is too large.' },
  unsupported_media_type: { title: 'Unsupported media type.' },
  idempotency_mismatch: { title: 'Idempotency-Key reused with a different request.' },
  rate_limited: { title: 'Too many requests.' },
  internal: { title: 'Internal server error.' },
  unavailable: { title: 'Service unavailable.' },
  overloaded: { title: 'Too busy to record this request.' },
} as const;

export type ErrorCode = keyof typeof errorCodes;

/**
 * One invalid field of an operation's input: its path and what is wrong with it. Which part of a request the input
 * came from (body, query string) is the caller's to say; a service only knows the input it was given.
 */
export interface FieldError {
  field: string;
  message: string;
}

export interface AppErrorOptions {
  errors?: FieldError[] | undefined;
  /** How long the caller should wait before trying again, in seconds (a busy database, a request still running). */
  retryAfterS?: number | undefined;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly errors: FieldError[] | undefined;
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, detail: string, options: AppErrorOptions = {}) {
    super(detail, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.errors = options.errors;
    this.retryAfterS = options.retryAfterS;
  }
}

/** At most this many field errors are listed, so that a huge bad input cannot make a huger answer. */
export const MAX_FIELD_ERRORS = 20;
const DETAIL_FIELDS = 5;

/** The detail of a validation error: the first few invalid fields, and how many more there are. */
export function fieldsDetail(errors: readonly FieldError[]): string {
  const shown = errors.slice(0, DETAIL_FIELDS).map((e) => `${e.field}: ${e.message}`);
  if (errors.length > DETAIL_FIELDS) shown.push(`and ${errors.length - DETAIL_FIELDS} more`);
  return shown.join('; ');
}

/** The one way a service refuses its input: a validation error naming each invalid field (the first 20). */
export function invalidFields(errors: FieldError[]): AppError {
  return new AppError('validation', fieldsDetail(errors), { errors: errors.slice(0, MAX_FIELD_ERRORS) });
}

/**
 * `err`, then what it wraps, then what that wraps...: wrappers (drizzle's "Failed query", libSQL's errors, ours)
 * keep the real reason in `cause`. Bounded, so that a cycle of causes cannot loop.
 */
export function* causeChain(err: unknown, max = 16): Generator<unknown> {
  let e = err;
  for (let i = 0; i < max && e !== undefined && e !== null; i++) {
    yield e;
    e = (e as { cause?: unknown }).cause;
  }
}

/** The first error of the cause chain that `test` accepts. */
export function findCause<T = unknown>(err: unknown, test: (e: unknown) => boolean): T | undefined {
  for (const e of causeChain(err)) if (test(e)) return e as T;
  return undefined;
}

/** The `code` property of an error, when it has a string one (libSQL's SQLITE_*, Node's ECONNREFUSED). */
export const errorCode = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

/** True when the database (libSQL/SQLite) refused because another connection held its lock past the busy timeout. */
export const isBusy = (err: unknown) =>
  findCause(err, (e) => errorCode(e) === 'SQLITE_BUSY' || errorCode(e) === 'SQLITE_LOCKED') !== undefined;
