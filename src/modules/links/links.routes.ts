/** HTTP routes of links under `/v1/links`: create (with Idempotency-Key), list, read, update, delete. */
import { createRoute } from '@hono/zod-openapi';
import * as z from '../../platform/zod.ts';
import { serviceContext } from '../../http/context.ts';
import { requireScope } from '../../http/middleware/auth.ts';
import { idempotency } from '../../http/middleware/idempotency.ts';
import {
  bearerSecurity,
  commonErrors,
  conflictError,
  createRouter,
  IdParams,
  idempotencyErrors,
  jsonBody,
  headers,
  jsonResponse,
} from '../../http/router.ts';
import type { IdempotencyService } from '../idempotency/idempotency.service.ts';
import type { LinksService } from './links.service.ts';
import { IDEMPOTENCY_KEY_PATTERN } from '../idempotency/idempotency.service.ts';
import { CreateLinkSchema, LinkListSchema, LinkSchema, ListLinksQuery, UpdateLinkSchema } from './links.schemas.ts';

// The idempotency middleware checks the key before this validator runs; the schema states its rule.
const IdempotencyHeader = z.object({
  'idempotency-key': z
    .string()
    .regex(IDEMPOTENCY_KEY_PATTERN, 'must be 1-255 visible ASCII characters')
    .optional()
    .openapi({ description: 'Retries with the same key and body get the first answer for 24 hours (1-255 visible ASCII characters).' }),
});

export function linksRoutes(service: LinksService, idempotencyService: IdempotencyService, now: () => Date) {
  const createLink = createRoute({
    method: 'post',
    path: '/v1/links',
    operationId: 'createLink',
    tags: ['Links'],
    summary: 'Create a short link',
    security: bearerSecurity,
    middleware: [requireScope('links:write'), idempotency(idempotencyService, now)] as const,
    request: { headers: IdempotencyHeader, body: jsonBody(CreateLinkSchema) },
    responses: {
      201: {
        ...jsonResponse(LinkSchema, 'The link.'),
        headers: {
          ...headers.location('The new link: `/v1/links/{id}`.'),
          'Idempotent-Replayed': {
            description: '`true` when this is the stored answer to an earlier request with the same Idempotency-Key.',
            schema: { type: 'string', enum: ['true'] },
          },
        },
      },
      ...commonErrors,
      ...idempotencyErrors,
    },
  });

  const listLinks = createRoute({
    method: 'get',
    path: '/v1/links',
    operationId: 'listLinks',
    tags: ['Links'],
    summary: 'List links, newest first, with cursor pagination and filters',
    security: bearerSecurity,
    middleware: [requireScope('links:read')] as const,
    request: { query: ListLinksQuery },
    responses: { 200: jsonResponse(LinkListSchema, 'A page of links.'), ...commonErrors },
  });

  const getLink = createRoute({
    method: 'get',
    path: '/v1/links/{id}',
    operationId: 'getLink',
    tags: ['Links'],
    summary: 'Get a link',
    security: bearerSecurity,
    middleware: [requireScope('links:read')] as const,
    request: { params: IdParams },
    responses: { 200: jsonResponse(LinkSchema, 'The link.'), ...commonErrors },
  });

  const updateLink = createRoute({
    method: 'patch',
    path: '/v1/links/{id}',
    operationId: 'updateLink',
    tags: ['Links'],
    summary: 'Change a link (null clears an optional field)',
    security: bearerSecurity,
    middleware: [requireScope('links:write')] as const,
    request: { params: IdParams, body: jsonBody(UpdateLinkSchema) },
    responses: { 200: jsonResponse(LinkSchema, 'The changed link.'), ...commonErrors, ...conflictError },
  });

  const deleteLink = createRoute({
    method: 'delete',
    path: '/v1/links/{id}',
    operationId: 'deleteLink',
    tags: ['Links'],
    summary: 'Delete a link',
    security: bearerSecurity,
    middleware: [requireScope('links:write')] as const,
    request: { params: IdParams },
    responses: { 204: { description: 'Deleted.' }, ...commonErrors },
  });

  return createRouter()
    .openapi(createLink, async (c) => {
      const link = await service.create(serviceContext(c, now), c.req.valid('json'), c.get('idempotencySeed'));
      c.header('location', `/v1/links/${link.id}`);
      return c.json(link, 201);
    })
    .openapi(listLinks, async (c) => c.json(await service.list(serviceContext(c, now), c.req.valid('query')), 200))
    .openapi(getLink, async (c) => c.json(await service.get(serviceContext(c, now), c.req.valid('param').id), 200))
    .openapi(updateLink, async (c) => {
      const link = await service.update(serviceContext(c, now), c.req.valid('param').id, c.req.valid('json'));
      return c.json(link, 200);
    })
    .openapi(deleteLink, async (c) => {
      await service.delete(serviceContext(c, now), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
