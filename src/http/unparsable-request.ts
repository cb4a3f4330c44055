/**
 * The answer to a request that a server adapter could not turn into a web Request at all (@hono/node-server: a Host
 * header or request target that is not a URL), which never reaches the app: problem+json like every other error,
 * rather than the adapter's bare 400.
 */
import { AppError } from '../errors.ts';
import { problemResponse } from './problem.ts';

export function unparsableRequest(malformed: boolean): Response {
  const error = malformed
    ? new AppError('bad_request', 'The Host header or the request target is malformed.')
    : new AppError('internal', 'An unexpected error occurred. Quote the instance id when reporting it.');
  return problemResponse(error, crypto.randomUUID());
}
