/**
 * hop's one error model. Services throw `AppError` with a code; the HTTP layer (src/http/problem.ts) is the only
 * place that maps a code to a status and an RFC 9457 problem document.
 */

export const errorCodes = {
  validation: { status: 400, title: 'Your request is not valid.' },
  malformed_json: { status: 400, title: 'The request body is not valid JSON.' },
  bad_request: { status: 400, title: 'Bad request.' },
  unauthorized: { status: 401, title: 'Authentication required.' },
  forbidden: { status: 403, title: 'Not allowed.' },
  not_found: { status: 404, title: 'Not found.' },
  method_not_allowed: { status: 405, title: 'Method not allowed.' },
  conflict: { status: 409, title: 'Conflict.' },
  idempotency_in_progress: { status: 409, title: 'A request with this Idempotency-Key is still in progress.' },
  link_gone: { status: 410, title: 'This link is no longer available.' },
  payload_too_large: { status: 413, title: 'The request body is too large.' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type.' },
  idempotency_mismatch: { status: 422, title: 'Idempotency-Key reused with a different request.' },
  rate_limited: { status: 429, title: 'Too many requests.' },
  internal: { status: 500, title: 'Internal server error.' },
  unavailable: { status: 503, title: 'Service unavailable.' },
} as const;

export type ErrorCode = keyof typeof errorCodes;

/** One invalid field: where it was (`body`, `query`, `path`, `header`), its path, and what is wrong with it. */
export interface FieldError {
  in: 'body' | 'query' | 'path' | 'header';
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    detail: string,
    options: { errors?: FieldError[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.errors = options.errors;
    this.headers = options.headers;
  }

  get status(): number {
    return errorCodes[this.code].status;
  }
}

/** At most this many field errors are listed, so that a huge bad body cannot make a huger answer. */
export const MAX_FIELD_ERRORS = 20;
const DETAIL_FIELDS = 5;

/** The one way to build a validation error: 400, naming each invalid field (the first 20) in `errors[]`. */
export function invalidFields(errors: FieldError[]): AppError {
  const shown = errors.slice(0, DETAIL_FIELDS).map((e) => `${e.field}: ${e.message}`);
  if (errors.length > DETAIL_FIELDS) shown.push(`and ${errors.length - DETAIL_FIELDS} more`);
  return new AppError('validation', shown.join('; '), { errors: errors.slice(0, MAX_FIELD_ERRORS) });
}

/** A validation error naming invalid fields of a request body. */
export const invalidBody = (errors: Array<{ field: string; message: string }>) =>
  invalidFields(errors.map((e) => ({ in: 'body', ...e })));

/** True when a libSQL error (or one it wraps) carries `code`. */
function hasCode(err: unknown, codes: readonly string[]): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if (codes.includes((e as { code?: unknown }).code as string)) return true;
  }
  return false;
}

/** True when the database (libSQL/SQLite) refused because another connection held its lock past the busy timeout. */
export const isBusy = (err: unknown) => hasCode(err, ['SQLITE_BUSY', 'SQLITE_LOCKED']);
