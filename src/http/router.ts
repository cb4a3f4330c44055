/**
 * The router factory every module uses, so all of them share the validation hook and conditional GET, and the
 * OpenAPI pieces (problem schema, error responses, bearer security) that route definitions reuse. Every GET is
 * documented with its HEAD twin (Hono answers HEAD wherever it answers GET).
 */
import { OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import * as z from '../platform/zod.ts';
import type { AppEnv } from './env.ts';
import { conditionalGet, REVALIDATE } from './middleware/conditional-get.ts';
import { locateFields, validationHook, type InputLocation } from './problem.ts';

export function createRouter() {
  const router = new OpenAPIHono<AppEnv>({ defaultHook: (result) => validationHook(result) });
  const register = router.openapi as unknown as (route: RouteConfig, ...rest: unknown[]) => typeof router;
  let revalidation: ReturnType<typeof conditionalGet> | undefined;
  const wrapped = (route: RouteConfig, handler: RouteHandler, ...rest: unknown[]) => {
    rest.unshift(locatingFields(handler, route.request?.body ? 'body' : 'query'));
    if (answersJsonToGet(route)) {
      if (!revalidation) {
        revalidation = conditionalGet();
        registerConditionalGetComponents(router);
      }
      route = withConditionalGet(route, revalidation);
    }
    const registered = register(route, ...rest);
    if (route.method === 'get') router.openAPIRegistry.registerPath(headOf(route));
    return registered;
  };
  router.openapi = wrapped as unknown as typeof router.openapi;
  return router;
}

type RouteHandler = (c: unknown, next: unknown) => unknown;

/**
 * A route hands its service one input, the body when it declares one and the query string otherwise, so the route
 * says where the invalid fields a service names were.
 */
function locatingFields(handler: RouteHandler, input: InputLocation): RouteHandler {
  return async function located(c, next) {
    try {
      return await handler(c, next);
    } catch (err) {
      throw locateFields(err, input);
    }
  };
}

/**
 * A GET of the management API whose 200 is JSON, and JSON only: it gets conditional GET and its documentation.
 * Streamed answers (NDJSON, CSV) declare other media types and are left alone.
 */
function answersJsonToGet(route: RouteConfig): boolean {
  const ok = route.responses[200];
  if (route.method !== 'get' || !route.path.startsWith('/v1/') || !ok || '$ref' in ok) return false;
  const types = Object.keys(ok.content ?? {});
  return types.length === 1 && types[0] === 'application/json';
}

function withConditionalGet(route: RouteConfig, revalidation: ReturnType<typeof conditionalGet>): RouteConfig {
  const ok = route.responses[200] as Exclude<RouteConfig['responses'][string], { $ref: string }>;
  const own = route.middleware === undefined ? [] : Array.isArray(route.middleware) ? route.middleware : [route.middleware];
  return {
    ...route,
    // First, so that what the route's own middleware and validators throw (403, 400) reaches it as an error answer,
    // which it leaves alone.
    middleware: [revalidation, ...own],
    parameters: [...(route.parameters ?? []), { $ref: '#/components/parameters/IfNoneMatch' }] as RouteConfig['parameters'],
    responses: {
      ...route.responses,
      200: { ...ok, headers: { ...ok.headers, ...REVALIDATION_HEADERS } },
      304: { $ref: '#/components/responses/NotModified' },
    },
  };
}

/**
 * The HEAD twin of a GET's OpenAPI entry: the same parameters, statuses and headers, no bodies. Its operationId is the
 * GET's with a `Head` suffix.
 */
export function headOf(route: RouteConfig): RouteConfig {
  const { middleware: _middleware, ...documented } = route;
  const responses = Object.fromEntries(
    Object.entries(route.responses).map(([status, response]) => [
      status,
      '$ref' in response ? response : { description: response.description, headers: response.headers },
    ]),
  );
  return {
    ...documented,
    method: 'head',
    operationId: route.operationId && `${route.operationId}Head`,
    summary: route.summary && `${route.summary} (HEAD: the same headers, no body)`,
    request: route.request && { ...route.request, body: undefined },
    responses,
  };
}

const REVALIDATION_HEADERS = {
  ETag: { $ref: '#/components/headers/ETag' },
  'Cache-Control': { $ref: '#/components/headers/CacheControl' },
  Vary: { $ref: '#/components/headers/Vary' },
};

/** Each router that has such a route registers them; app.route() copies them into the app's document. */
function registerConditionalGetComponents(router: OpenAPIHono<AppEnv>) {
  const registry = router.openAPIRegistry;
  registry.registerComponent('headers', 'ETag', {
    description: 'The version of this answer; send it back in `If-None-Match` to get 304 while it is unchanged.',
    schema: { type: 'string', example: '"3f786850e387550fdab836ed7e6dc881de23001b"' },
  });
  registry.registerComponent('headers', 'CacheControl', {
    description: 'A client may keep the answer but must revalidate it (with `If-None-Match`) before each reuse.',
    schema: { type: 'string', const: REVALIDATE },
  });
  registry.registerComponent('headers', 'Vary', {
    description: 'The answer depends on the API key.',
    schema: { type: 'string', example: 'Authorization' },
  });
  registry.registerComponent('parameters', 'IfNoneMatch', {
    name: 'If-None-Match',
    in: 'header',
    required: false,
    description:
      'ETags of answers the client holds (RFC 9110 §13.1.2: a list, `W/` compared weakly, or `*`). When one matches ' +
      'the current answer: 304 without a body. Only quoted tags count; a malformed value matches nothing and is no error.',
    schema: { type: 'string', example: '"3f786850e387550fdab836ed7e6dc881de23001b"' },
  });
  registry.registerComponent('responses', 'NotModified', {
    description: 'Not Modified: the answer is the one whose ETag was sent in `If-None-Match`; no body.',
    headers: REVALIDATION_HEADERS,
  });
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

type Header = { description: string; required?: boolean; schema: { type: 'string' | 'integer'; pattern?: string; minimum?: number } };

/** Headers of hop's answers, for the OpenAPI entries (names as HTTP spells them; HTTP compares them case-insensitively). */
export const headers = {
  requestId: {
    'X-Request-Id': {
      description: 'The request id: the client\'s own when well-formed, else a new one. Quote it when reporting a fault.',
      required: true,
      schema: { type: 'string' },
    },
  },
  retryAfter: {
    'Retry-After': { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'string', pattern: '^[0-9]+$' } },
  },
  challenge: {
    'WWW-Authenticate': { description: 'A Bearer challenge (RFC 6750).', required: true, schema: { type: 'string', pattern: '^Bearer ' } },
  },
  location: (description: string) => ({ Location: { description, required: true, schema: { type: 'string' } } }),
} satisfies Record<string, Record<string, Header> | ((description: string) => Record<string, Header>)>;

export const problem = (description: string, extra: Record<string, Header> = {}) => ({
  description,
  headers: { ...headers.requestId, ...extra },
  content: { 'application/problem+json': { schema: ProblemSchema } },
});

/** The error answers every authenticated route can give, for its OpenAPI entry. */
export const commonErrors = {
  400: problem('Invalid input; `errors[]` names each invalid field.'),
  401: problem('Missing, invalid or revoked API key.', headers.challenge),
  403: problem('The key lacks the scope this route needs.'),
  404: problem('No such resource in your workspace.'),
  413: problem('The request body is too large.'),
  415: problem('The request body is not JSON.'),
  429: problem(
    'Too many requests for this API key, or failed authentications from this address; retry after `Retry-After` seconds.',
    headers.retryAfter,
  ),
  500: problem('A fault of the server; the detail names only the instance id.'),
  503: problem('The database is busy or did not answer in time; retry after `Retry-After` seconds.'),
} as const;

export const conflictError = { 409: problem('Conflicts with an existing resource.') } as const;
export const idempotencyErrors = {
  409: problem('A resource conflicts, or a request with the same Idempotency-Key is in progress.'),
  422: problem('The Idempotency-Key was used with a different request.'),
} as const;

export const bearerSecurity = [{ bearerAuth: [] }];
/** Routes anyone may call: the redirect, probes and documents. */
export const publicSecurity: Array<Record<string, string[]>> = [];

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
