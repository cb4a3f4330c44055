/**
 * The redirect's entry in the OpenAPI document (`GET|HEAD /{slug}`). The route itself is a plain Hono handler: a zod
 * validator on the hot path would cost every click, and the slug's syntax is checked by the service anyway.
 */
import type { RouteConfig } from '@hono/zod-openapi';
import * as z from '../../platform/zod.ts';
import { headers, headOf, problem, ProblemSchema, publicSecurity } from '../../http/router.ts';

const redirectHeaders = {
  ...headers.location('The target: the link\'s URL (its device or geo target, the click\'s query merged in), or fallbackUrl for an expired link.'),
  'Cache-Control': {
    description: "`public, max-age=N` from the link's cacheMaxAge (capped by its expiry), `private, max-age=N` for device-targeted links, or `no-store`.",
    required: true,
    schema: { type: 'string' as const, pattern: '^(?:no-store|(?:public|private), max-age=[0-9]+)$' },
  },
  ...headers.requestId,
};

const redirect = (description: string) => ({ description, headers: redirectHeaders });

/** A problem+json, or a small HTML page to a client that prefers text/html (a browser). */
const problemOrPage = (description: string, extra: Parameters<typeof problem>[1] = {}) => {
  const answer = problem(description, extra);
  return { ...answer, content: { ...answer.content, 'text/html': { schema: z.string() } } };
};

export const redirectDocument = {
  method: 'get',
  path: '/{slug}',
  operationId: 'followLink',
  tags: ['Redirect'],
  summary: 'Follow a short link on any short-link host',
  description: 'HEAD answers the same status and headers and records no human click.',
  security: publicSecurity,
  request: { params: z.object({ slug: z.string().openapi({ param: { name: 'slug', in: 'path' }, example: 'launch' }) }) },
  responses: {
    301: redirect("Permanent redirect (the link's redirectStatus)."),
    302: redirect('Redirect (the default), and the redirect of an expired link to its fallbackUrl.'),
    307: redirect('Temporary redirect keeping the method.'),
    308: redirect('Permanent redirect keeping the method.'),
    400: problem('The Host header is not one host.'),
    404: problemOrPage('No such link; a small HTML page when the client prefers text/html.'),
    410: problemOrPage('Expired or out of clicks, without fallbackUrl.'),
    429: problemOrPage('Too many requests, or unknown slugs, from this address. HTML to a browser.', headers.retryAfter),
    500: { description: 'A fault of the server.', content: { 'application/problem+json': { schema: ProblemSchema } } },
    503: problem('Too busy to record the visit (the click queue is full), or the database did not answer in time; retry after `Retry-After` seconds.'),
  },
} satisfies RouteConfig;

export const redirectHeadDocument = headOf(redirectDocument);
