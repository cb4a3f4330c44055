/**
 * HTTP routes of statistics: a link's (`/v1/links/{id}/stats`) and the workspace's (`/v1/stats`), the raw click
 * export (`/v1/links/{id}/clicks`, streamed), orphan visits of the workspace's domains (`/v1/orphans`) and, for
 * the operator, of any host (`/v1/operator/orphans`). All need `analytics:read` but the operator's.
 */
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { AppEnv } from '../../http/env.ts';
import { serviceContext } from '../../http/context.ts';
import { operatorAuth, requireScope } from '../../http/middleware/auth.ts';
import { bearerSecurity, commonErrors, createRouter, IdParams, jsonResponse } from '../../http/router.ts';
import type { ServiceContext } from '../context.ts';
import { EXPORT_CONTENT_TYPES, exportStream, formatFromAccept } from './stats.export.ts';
import { ExportedClickSchema, ExportQuery, OrphanStatsSchema, OrphansQuery, StatsQuery, StatsSchema } from './stats.schemas.ts';
import type { StatsService } from './stats.service.ts';

const TAGS = ['Statistics'];

const STATS_DESCRIPTION =
  'From hourly rollups, kept when raw clicks expire. Clicks count once the queue delivers them (about a second); ' +
  'top lists of UTC days closed over an hour ago are cached for up to 10 minutes.';

const orphansRoute = (path: string, operationId: string, security: Array<Record<string, string[]>>, description: string) => ({
  method: 'get' as const,
  path,
  operationId,
  tags: TAGS,
  description,
  security,
  request: { query: OrphansQuery },
  responses: { 200: jsonResponse(OrphanStatsSchema, 'Orphan visits of the domain.'), ...commonErrors },
});

export function statsRoutes(service: StatsService, now: () => Date) {
  const linkStats = createRoute({
    method: 'get',
    path: '/v1/links/{id}/stats',
    operationId: 'getLinkStats',
    tags: TAGS,
    summary: "A link's clicks: totals, series and top values",
    description: STATS_DESCRIPTION,
    security: bearerSecurity,
    middleware: [requireScope('analytics:read')] as const,
    request: { params: IdParams, query: StatsQuery },
    responses: { 200: jsonResponse(StatsSchema, 'Statistics of the link.'), ...commonErrors },
  });

  const workspaceStats = createRoute({
    method: 'get',
    path: '/v1/stats',
    operationId: 'getWorkspaceStats',
    tags: TAGS,
    summary: "The workspace's clicks over all its links: totals, series and top values",
    description: `${STATS_DESCRIPTION} Clicks of deleted links still count here.`,
    security: bearerSecurity,
    middleware: [requireScope('analytics:read')] as const,
    request: { query: StatsQuery },
    responses: { 200: jsonResponse(StatsSchema, 'Statistics of the workspace.'), ...commonErrors },
  });

  const exportClicks = createRoute({
    method: 'get',
    path: '/v1/links/{id}/clicks',
    operationId: 'exportClicks',
    tags: TAGS,
    summary: "Stream a link's raw clicks as NDJSON or CSV",
    description:
      'In time order, streamed. Raw clicks are kept HOP_CLICK_RETENTION_DAYS (default 90); older ones are gone ' +
      'here but still counted in statistics. CSV: RFC 4180 with a header; formula-like cells get a leading apostrophe.',
    security: bearerSecurity,
    middleware: [requireScope('analytics:read')] as const,
    request: { params: IdParams, query: ExportQuery },
    responses: {
      200: {
        description: 'An attachment.',
        headers: {
          'Content-Disposition': {
            description: 'attachment; filename="clicks-{id}.{format}"',
            required: true,
            schema: { type: 'string', pattern: '^attachment; filename=' },
          },
        },
        content: {
          // A stream of Click objects, one JSON text per line: not one JSON value, so not a schema of one object.
          'application/x-ndjson': {
            schema: {
              type: 'string',
              description: 'Newline-delimited JSON: one `Click` (components/schemas/Click) per line.',
              example: '{"id":"clk_...","at":"2026-11-21T12:00:00.000Z","country":"DE","device":"desktop","browser":"Chrome","os":"Linux","referrer":null,"bot":false}\n',
            },
            'x-item-schema': { $ref: '#/components/schemas/Click' },
          },
          'text/csv': { schema: { type: 'string', example: 'id,at,country,device,browser,os,referrer,bot\r\n' } },
        },
      },
      ...commonErrors,
    },
  });

  const orphans = createRoute({
    ...orphansRoute('/v1/orphans', 'getOrphanStats', bearerSecurity, 'On a domain the workspace registered (not the shared default one).'),
    summary: 'Visits to unknown slugs of one of your domains',
    middleware: [requireScope('analytics:read')] as const,
  });

  const router = createRouter();
  // The export's NDJSON lines: named in the document, though no response is one Click.
  router.openAPIRegistry.register('Click', ExportedClickSchema);
  return router
    .openapi(linkStats, async (c) => {
      const stats = await service.linkStats(serviceContext(c, now), c.req.valid('param').id, c.req.valid('query'));
      return c.json(stats, 200);
    })
    .openapi(workspaceStats, async (c) => c.json(await service.workspaceStats(serviceContext(c, now), c.req.valid('query')), 200))
    .openapi(exportClicks, async (c) => {
      const id = c.req.valid('param').id;
      const query = c.req.valid('query');
      const format = query.format ?? formatFromAccept(c.req.header('accept'));
      const pages = await service.exportClicks(serviceContext(c, now), id, query);
      // The first page is read before answering: a database failure is still a problem+json, not a cut stream.
      const first = await pages.next();
      return new Response(exportStream(format, first.done ? undefined : first.value, pages), {
        status: 200,
        headers: {
          'content-type': EXPORT_CONTENT_TYPES[format],
          'content-disposition': `attachment; filename="clicks-${id}.${format}"`,
          'cache-control': 'no-store',
          vary: 'Accept',
          // A Response of its own: the request context's header is not copied onto it.
          'x-request-id': c.get('requestId'),
        },
      });
    })
    .openapi(orphans, async (c) => c.json(await service.orphanStats(serviceContext(c, now), c.req.valid('query')), 200));
}

/** `GET /v1/operator/orphans`: the operator token, any host (the default domain's orphans are the operator's alone). */
export function statsOperatorRoutes(service: StatsService, adminToken: string | undefined, now: () => Date) {
  const operatorOrphans = createRoute({
    ...orphansRoute(
      '/v1/operator/orphans',
      'getOperatorOrphanStats',
      [{ operatorToken: [] }],
      'On any host, the shared default domain included.',
    ),
    summary: 'Visits to unknown slugs of any host (operator token)',
    middleware: [operatorAuth(adminToken)] as const,
  });
  const operatorContext = (c: Context<AppEnv>): ServiceContext => ({
    workspaceId: '',
    actor: { type: 'operator' },
    requestId: c.get('requestId'),
    now,
  });
  return createRouter().openapi(operatorOrphans, async (c) =>
    c.json(await service.orphanStats(operatorContext(c), c.req.valid('query')), 200),
  );
}
