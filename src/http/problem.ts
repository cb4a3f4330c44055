/**
 * The one problem+json mapper (RFC 9457): domain errors (AppError), Hono's HTTPException and zod validation failures
 * all leave the app through here. The status of each error code, and the headers an error's data calls for
 * (`retry-after`, `allow`), are decided here and nowhere below. Server faults are logged with their stack and
 * answered without any internal detail.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ZodError } from 'zod';
import {
  AppError,
  errorCodes,
  fieldsDetail,
  findCause,
  isBusy,
  MAX_FIELD_ERRORS,
  type AppErrorOptions,
  type ErrorCode,
  type FieldError,
} from '../errors.ts';
import { describeError, type Logger } from '../platform/logger.ts';
import type { AppEnv } from './env.ts';
import type { RequestBookkeeping } from './middleware/request-context.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The HTTP status of each error code. */
export const errorStatus: Record<ErrorCode, number> = {
  validation: 400,
  malformed_json: 400,
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  idempotency_in_progress: 409,
  link_gone: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_mismatch: 422,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  overloaded: 503,
};

/** The part of a request an invalid field was in. */
export type InputLocation = 'body' | 'query' | 'path' | 'header';

/** An invalid field as problem+json lists it: where it was, its path, and what is wrong with it. */
export interface ProblemFieldError extends FieldError {
  in: InputLocation;
}

export interface HttpErrorOptions extends AppErrorOptions {
  /** Where the invalid fields were (a service's own error says nothing of the request; the route knows). */
  input?: InputLocation | undefined;
  /** The methods the path allows (a 405's `Allow`). */
  allow?: readonly string[] | undefined;
  /** Headers only HTTP has a word for: an authentication challenge, the rate-limit fields. */
  headers?: Record<string, string> | undefined;
}

/** An AppError raised or completed by the HTTP layer, with what only HTTP knows about it. */
export class HttpError extends AppError {
  readonly input: InputLocation | undefined;
  readonly allow: readonly string[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, detail: string, options: HttpErrorOptions = {}) {
    super(code, detail, options);
    this.input = options.input;
    this.allow = options.allow;
    this.headers = options.headers;
  }
}

/** A validation error of the request itself: the fields of `input` that are invalid (the first 20). */
export function invalidInput(input: InputLocation, errors: FieldError[]): HttpError {
  return new HttpError('validation', fieldsDetail(errors), { errors: errors.slice(0, MAX_FIELD_ERRORS), input });
}

/** A service's validation error, told which part of the request its input was; anything else as it is. */
export function locateFields(err: unknown, input: InputLocation): unknown {
  if (!(err instanceof AppError) || err instanceof HttpError || !err.errors) return err;
  return new HttpError(err.code, err.message, { errors: err.errors, retryAfterS: err.retryAfterS, input, cause: err.cause });
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: ProblemFieldError[];
}

export const problemType = (code: ErrorCode) => `urn:hop:problem:${code.replaceAll('_', '-')}`;

export function problemBody(err: AppError, requestId: string): Problem {
  const body: Problem = {
    type: problemType(err.code),
    title: errorCodes[err.code].title,
    status: errorStatus[err.code],
    detail: err.message,
    instance: requestId,
  };
  if (err.errors?.length) {
    // A field error that reached here unlocated came from a service called outside a route's handler; services
    // validate what they are given, which is the body wherever the request has one.
    const where = (err instanceof HttpError && err.input) || 'body';
    body.errors = err.errors.map(({ field, message }) => ({ in: where, field, message }));
  }
  return body;
}

export function problemResponse(err: AppError, requestId: string, method = 'GET'): Response {
  const headers = new Headers({
    'content-type': PROBLEM_CONTENT_TYPE,
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  if (err.retryAfterS !== undefined) headers.set('retry-after', String(err.retryAfterS));
  if (err instanceof HttpError) {
    if (err.allow) headers.set('allow', err.allow.join(', '));
    for (const [k, v] of Object.entries(err.headers ?? {})) headers.set(k, v);
  }
  const body = method === 'HEAD' ? null : JSON.stringify(problemBody(err, requestId));
  const status = errorStatus[err.code];
  const res = new Response(body, { status, headers });
  if (status >= 500) faults.set(res, err.code);
  return res;
}

/** The error code of each server-fault answer made here, for the errors metric (src/http/metrics.ts). */
const faults = new WeakMap<Response, ErrorCode>();

/** The problem code (`unavailable`, `overloaded`, `internal`) of an answer of 500 or above made by problemResponse. */
export const faultType = (res: Response): ErrorCode | undefined => faults.get(res);

const fromStatus: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'unavailable',
};

/** Turns anything thrown into an AppError that is safe to show a client. */
export function toAppError(err: unknown): AppError {
  // drizzle wraps what the database client threw ("Failed query"); the guarded client's 503 is inside.
  const appError = findCause<AppError>(err, (e) => e instanceof AppError);
  if (appError) return appError;
  if (err instanceof HTTPException) {
    if (err.status === 400 && /JSON/i.test(err.message)) {
      return new AppError('malformed_json', 'The request body could not be parsed as JSON.');
    }
    const code = fromStatus[err.status];
    if (code) return new AppError(code, err.message || errorCodes[code].title);
  }
  if (isBusy(err)) {
    return new AppError('unavailable', 'The database is busy; retry shortly.', { retryAfterS: 1 });
  }
  return new AppError('internal', 'An unexpected error occurred. Quote the instance id when reporting it.');
}

/** The problem+json answer for anything thrown, logged as a server's fault or an expected refusal when 5xx. */
export function errorResponse(logger: Logger, err: unknown, request: { requestId: string; method: string; path: string }): Response {
  const { requestId, path } = request;
  const appError = toAppError(err);
  if (appError.code === 'internal' && !(err instanceof AppError)) {
    logger.log('error', 'request failed', { requestId, path, ...describeError(err) });
  } else if (errorStatus[appError.code] >= 500 && appError.code !== 'overloaded') {
    // An overload is logged once per episode by what refused (the click queue), not once per refused request.
    // Expected refusals (draining, a busy or unreachable database): a warning without a stack, not an error.
    const cause = appError.cause instanceof Error ? `${appError.cause.name}: ${appError.cause.message}` : undefined;
    logger.log('warn', 'request refused', { requestId, path, code: appError.code, detail: appError.message, cause });
  }
  return problemResponse(appError, requestId, request.method);
}

/** nginx's status for a request whose client closed the connection before the answer. */
const CLIENT_CLOSED = 499;

export function errorHandler(logger: Logger, bookkeeping: RequestBookkeeping) {
  return function onError(err: unknown, c: Context<AppEnv>): Response {
    if (c.get('requestId') === undefined) bookkeeping.begin(c);
    // The client went away mid-request (an aborted upload): reading its body failed because of that, not of hop.
    // Nobody reads this answer; the request is logged as nginx does, 499 (client closed request), without a stack.
    if (c.req.raw.signal.aborted) {
      logger.log('debug', 'client aborted', { requestId: c.get('requestId'), method: c.req.method, path: c.req.path });
      if (!c.get('requestLoggedAfter')) bookkeeping.finish(c, CLIENT_CLOSED);
      return new Response(null, { status: CLIENT_CLOSED });
    }
    const res = errorResponse(logger, err, { requestId: c.get('requestId'), method: c.req.method, path: c.req.path });
    if (!c.get('requestLoggedAfter')) bookkeeping.finish(c, res.status);
    return res;
  };
}

/** zod's message, made plainer where its default says little (a missing field, a record key). */
function messageOf(issue: ZodError['issues'][number]): string {
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) return 'is required';
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  return issue.message;
}

const locations = { json: 'body', query: 'query', param: 'path', header: 'header' } as const;

/** Names each invalid field of a zod failure, including unknown or read-only fields. */
export function fieldErrors(error: ZodError, readOnly: ReadonlySet<string> = READ_ONLY_FIELDS) {
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const message = readOnly.has(key) ? 'is read-only and cannot be set' : 'is not a known field';
        out.push({ field: [...base, key].join('.'), message });
      }
      continue;
    }
    out.push({ field: base.join('.') || '(root)', message: messageOf(issue) });
  }
  return out;
}

/** Fields that exist on resources but that no client may set. */
export const READ_ONLY_FIELDS: ReadonlySet<string> = new Set([
  'id',
  'clicks',
  'createdAt',
  'updatedAt',
  'workspaceId',
  'shortUrl',
  'prefix',
  'key',
  'revokedAt',
]);

/** The validation hook shared by every route: a failed zod parse becomes a 400 naming each field. */
export function validationHook(
  result: { success: true } | { success: false; error: ZodError; target: string },
): void {
  if (result.success) return;
  if (result.target === 'param') throw new AppError('not_found', 'No such resource.');
  throw invalidInput(locations[result.target as keyof typeof locations] ?? 'body', fieldErrors(result.error));
}
