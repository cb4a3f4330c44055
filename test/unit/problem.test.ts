// The problem+json mapper: statuses from codes, headers from an error's data, field locations from the route.
import { describe, expect, it } from 'vitest';
import { AppError, errorCodes, invalidFields } from '../../src/errors.ts';
import { errorStatus, HttpError, locateFields, problemResponse, toAppError } from '../../src/http/problem.ts';

const answer = async (err: AppError) => {
  const res = problemResponse(err, 'req_1');
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.json() };
};

describe('problem+json', () => {
  it('has a status for every error code, and nothing else', () => {
    expect(Object.keys(errorStatus).sort()).toEqual(Object.keys(errorCodes).sort());
  });

  it('takes the status from the code and Retry-After from the data of a domain error', async () => {
    const err = new AppError('unavailable', 'The database did not answer; retry shortly.', { retryAfterS: 1 });
    expect(err).not.toHaveProperty('headers');
    expect(err).not.toHaveProperty('status');
    const { status, headers, body } = await answer(err);
    expect(status).toBe(503);
    expect(headers['retry-after']).toBe('1');
    expect(body).toEqual({
      type: 'urn:hop:problem:unavailable',
      title: 'Service unavailable.',
      status: 503,
      detail: 'The database did not answer; retry shortly.',
      instance: 'req_1',
    });
  });

  it('answers without Retry-After when the error does not say how long to wait', async () => {
    expect((await answer(new AppError('conflict', 'Taken.'))).headers).not.toHaveProperty('retry-after');
  });

  it('takes Allow of a 405 from the methods the error names', async () => {
    const { status, headers } = await answer(new HttpError('method_not_allowed', 'PUT is not allowed here.', { allow: ['GET', 'HEAD'] }));
    expect(status).toBe(405);
    expect(headers.allow).toBe('GET, HEAD');
  });

  it('lists a service\'s invalid fields where the route says its input was, exactly as before', async () => {
    const fromService = invalidFields([{ field: 'cursor', message: 'is not a cursor this API returned' }]);
    const located = locateFields(fromService, 'query') as AppError;
    expect(located).toBeInstanceOf(HttpError);
    const { status, body } = await answer(located);
    expect(status).toBe(400);
    expect(JSON.stringify(body.errors)).toBe('[{"in":"query","field":"cursor","message":"is not a cursor this API returned"}]');
    expect(body.detail).toBe('cursor: is not a cursor this API returned');
  });

  it('leaves an error that is not a service\'s validation error alone', () => {
    const notFound = new AppError('not_found', 'No such link.');
    expect(locateFields(notFound, 'body')).toBe(notFound);
    const header = new HttpError('validation', 'Idempotency-Key: bad', { errors: [{ field: 'Idempotency-Key', message: 'bad' }], input: 'header' });
    expect(locateFields(header, 'body')).toBe(header);
  });

  it('finds a domain error wrapped by a driver, and maps a busy database to 503 with Retry-After', async () => {
    const inner = new AppError('unavailable', 'The database cannot be reached; retry shortly.', { retryAfterS: 1 });
    expect(toAppError(new Error('Failed query', { cause: inner }))).toBe(inner);
    const busy = toAppError(new Error('Failed query', { cause: Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }) }));
    expect(busy.code).toBe('unavailable');
    expect((await answer(busy)).headers['retry-after']).toBe('1');
  });
});
