/**
 * The router factory every module uses, so all of them share the validation hook, and the OpenAPI pieces
 * (problem schema, error responses, bearer security) that route definitions reuse.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import * as z from '../platform/zod.ts';
import type { AppEnv } from './env.ts';
import { validationHook } from './problem.ts';

export function createRouter() {
  return new OpenAPIHono<AppEnv>({ defaultHook: (result) => validationHook(result) });
}

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: 'urn:hop:problem:validation' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().openapi({ description: 'The request id (also in the X-Request-Id header).' }),
    errors: z
      .array(
        z.object({
          in: z.enum(['body', 'query', 'path', 'header']),
          field: z.string(),
          message: z.string(),
        }),
      )
      .optional(),
  })
  .openapi('Problem');

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ProblemSchema } },
});

/** The error answers every authenticated route can give, for its OpenAPI entry. */
export const commonErrors = {
  400: problem('Invalid input; `errors[]` names each invalid field.'),
  401: problem('Missing, invalid or revoked API key.'),
  403: problem('The key lacks the scope this route needs.'),
  404: problem('No such resource in your workspace.'),
  413: problem('The request body is too large.'),
  415: problem('The request body is not JSON.'),
  429: problem('Too many requests for this API key, or failed authentications from this address; retry after `Retry-After` seconds.'),
  500: problem('A fault of the server; the detail names only the instance id.'),
  503: problem('The database is busy or did not answer in time; retry after `Retry-After` seconds.'),
} as const;

export const conflictError = { 409: problem('Conflicts with an existing resource.') } as const;
export const idempotencyErrors = {
  409: problem('A resource conflicts, or a request with the same Idempotency-Key is in progress.'),
  422: problem('The Idempotency-Key was used with a different request.'),
} as const;

export const bearerSecurity = [{ bearerAuth: [] }];

export const IdParams = z.object({
  id: z
    .string()
    .max(64)
    .openapi({ param: { name: 'id', in: 'path' }, example: 'lnk_0193d1b8e7c47a5e9d0a4f4c2b3e8f10' }),
});

export const jsonBody = <T extends z.ZodType>(schema: T, description?: string) => ({
  required: true,
  description,
  content: { 'application/json': { schema } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
