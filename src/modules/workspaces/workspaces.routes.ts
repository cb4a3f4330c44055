/** HTTP routes of workspaces (`/v1/workspaces`, `/v1/workspace`), API keys (`/v1/keys`) and domains (`/v1/domains`). */
import { createRoute } from '@hono/zod-openapi';
import { serviceContext } from '../../http/context.ts';
import { operatorAuth, requireScope } from '../../http/middleware/auth.ts';
import { strictBody } from '../../http/middleware/strict-body.ts';
import {
  bearerSecurity,
  commonErrors,
  conflictError,
  createRouter,
  IdParams,
  jsonBody,
  jsonResponse,
  problem,
} from '../../http/router.ts';
import type { WorkspacesService } from './workspaces.service.ts';
import {
  ApiKeyListSchema,
  CreateApiKeySchema,
  CreateDomainSchema,
  CreatedApiKeySchema,
  CreatedWorkspaceSchema,
  CreateWorkspaceSchema,
  DomainListSchema,
  DomainSchema,
  WorkspaceSchema,
} from './workspaces.schemas.ts';

/** `POST /v1/workspaces`: operator only, mounted before API-key authentication. */
export function operatorRoutes(service: WorkspacesService, adminToken: string | undefined, now: () => Date) {
  const createWorkspace = createRoute({
    method: 'post',
    path: '/v1/workspaces',
    operationId: 'createWorkspace',
    tags: ['Workspaces'],
    summary: 'Create a workspace and its first admin API key (operator token)',
    security: [{ operatorToken: [] }],
    middleware: [operatorAuth(adminToken), strictBody()] as const,
    request: { body: jsonBody(CreateWorkspaceSchema) },
    responses: {
      201: jsonResponse(CreatedWorkspaceSchema, 'The workspace, with its admin key shown once.'),
      ...commonErrors,
    },
  });
  return createRouter().openapi(createWorkspace, async (c) => {
    const created = await service.createWorkspace(c.req.valid('json'), now());
    // It carries a secret shown this once: no cache on the way may keep a copy.
    return c.json(created, 201, { 'cache-control': 'no-store' });
  });
}

export function workspaceRoutes(service: WorkspacesService, now: () => Date) {
  const getWorkspace = createRoute({
    method: 'get',
    path: '/v1/workspace',
    operationId: 'getWorkspace',
    tags: ['Workspaces'],
    summary: "The caller's workspace",
    security: bearerSecurity,
    responses: { 200: jsonResponse(WorkspaceSchema, 'The workspace of the API key.'), ...commonErrors },
  });

  const createKey = createRoute({
    method: 'post',
    path: '/v1/keys',
    operationId: 'createApiKey',
    tags: ['API keys'],
    summary: 'Create an API key (shown once)',
    security: bearerSecurity,
    middleware: [requireScope('workspace:admin')] as const,
    request: { body: jsonBody(CreateApiKeySchema) },
    responses: { 201: jsonResponse(CreatedApiKeySchema, 'The new key; `key` is shown only now.'), ...commonErrors },
  });

  const listKeys = createRoute({
    method: 'get',
    path: '/v1/keys',
    operationId: 'listApiKeys',
    tags: ['API keys'],
    summary: 'List active API keys',
    security: bearerSecurity,
    middleware: [requireScope('workspace:admin')] as const,
    responses: { 200: jsonResponse(ApiKeyListSchema, 'Active keys, newest first.'), ...commonErrors },
  });

  const revokeKey = createRoute({
    method: 'delete',
    path: '/v1/keys/{id}',
    operationId: 'revokeApiKey',
    tags: ['API keys'],
    summary: 'Revoke an API key (effective on the next request)',
    security: bearerSecurity,
    middleware: [requireScope('workspace:admin')] as const,
    request: { params: IdParams },
    responses: {
      204: { description: 'Revoked.' },
      ...commonErrors,
      409: problem("The workspace's last admin key: create another admin key first."),
    },
  });

  const createDomain = createRoute({
    method: 'post',
    path: '/v1/domains',
    operationId: 'createDomain',
    tags: ['Domains'],
    summary: 'Add a short-link domain',
    security: bearerSecurity,
    middleware: [requireScope('workspace:admin')] as const,
    request: { body: jsonBody(CreateDomainSchema) },
    responses: { 201: jsonResponse(DomainSchema, 'The domain.'), ...commonErrors, ...conflictError },
  });

  const listDomains = createRoute({
    method: 'get',
    path: '/v1/domains',
    operationId: 'listDomains',
    tags: ['Domains'],
    summary: "List the workspace's domains",
    security: bearerSecurity,
    middleware: [requireScope('links:read')] as const,
    responses: { 200: jsonResponse(DomainListSchema, 'Domains, newest first.'), ...commonErrors },
  });

  const deleteDomain = createRoute({
    method: 'delete',
    path: '/v1/domains/{id}',
    operationId: 'deleteDomain',
    tags: ['Domains'],
    summary: 'Remove a domain that no link uses',
    security: bearerSecurity,
    middleware: [requireScope('workspace:admin')] as const,
    request: { params: IdParams },
    responses: { 204: { description: 'Removed.' }, ...commonErrors, ...conflictError },
  });

  return createRouter()
    .openapi(getWorkspace, async (c) => c.json(await service.getWorkspace(serviceContext(c, now)), 200))
    // It carries a secret shown this once: no cache on the way may keep a copy.
    .openapi(createKey, async (c) => c.json(await service.createKey(serviceContext(c, now), c.req.valid('json')), 201, { 'cache-control': 'no-store' }))
    .openapi(listKeys, async (c) => c.json({ data: await service.listKeys(serviceContext(c, now)) }, 200))
    .openapi(revokeKey, async (c) => {
      await service.revokeKey(serviceContext(c, now), c.req.valid('param').id);
      return c.body(null, 204);
    })
    .openapi(createDomain, async (c) => {
      const domain = await service.createDomain(serviceContext(c, now), c.req.valid('json'));
      return c.json(domain, 201);
    })
    .openapi(listDomains, async (c) => c.json({ data: await service.listDomains(serviceContext(c, now)) }, 200))
    .openapi(deleteDomain, async (c) => {
      await service.deleteDomain(serviceContext(c, now), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
