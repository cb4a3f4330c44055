/**
 * The documents hop serves about itself: `/openapi.json`, the API reference at `/docs` (Swagger UI, its script and
 * style served by hop from the swagger-ui-dist package, so it works offline and under a strict CSP) and, at `/`, a
 * small HTML page for browsers. A client that does not prefer HTML gets the 404 problem+json at `/` it always got.
 */
import * as z from '../../platform/zod.ts';
import type { Context } from 'hono';
import { AppError } from '../../errors.ts';
import type { AppEnv } from '../../http/env.ts';
import { createRouter, headOf, problem, publicSecurity } from '../../http/router.ts';

/** The reference's files, each read once per process from the package (src/runtimes/docs-assets.*.ts). */
export const DOCS_ASSETS = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
} as const;
export type DocsAsset = keyof typeof DOCS_ASSETS;

// Served as a file rather than inline, so that the page's CSP needs no 'unsafe-inline' script.
const INIT_SCRIPT =
  "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#reference', deepLinking: true, validatorUrl: null });\n";

const REFERENCE_PAGE =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">' +
  '<title>hop API reference</title><link rel="stylesheet" href="/docs/swagger-ui.css"></head>' +
  '<body><div id="reference"></div><script src="/docs/swagger-ui-bundle.js"></script>' +
  '<script src="/docs/init.js"></script><noscript>The reference needs JavaScript; the document itself is ' +
  '<a href="/openapi.json">/openapi.json</a>.</noscript></body></html>';

const LANDING_PAGE =
  '<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">' +
  '<title>hop</title><body style="font:16px/1.5 system-ui;margin:4rem auto;max-width:36rem;padding:0 1rem">' +
  '<h1>hop</h1><p>hop is a short-link and click-analytics API. This host redirects its short links and answers ' +
  'applications that call the API with a key.</p>' +
  '<p><a href="/docs">The API reference</a> · <a href="/openapi.json">its OpenAPI document</a></p></body></html>';

/** The same reading of Accept as the redirect's pages: HTML only to a client that asks for it and not for JSON. */
const prefersHtml = (accept: string | undefined) =>
  !!accept && accept.includes('text/html') && !accept.includes('application/json');

const html = { 'text/html': { schema: z.string() } };
const documentation = ['Documentation'];

const landingDocument = {
  method: 'get' as const,
  path: '/',
  operationId: 'getLandingPage',
  tags: documentation,
  summary: 'A page for browsers: what this host is, with a link to the reference',
  security: publicSecurity,
  responses: {
    200: { description: 'To a client preferring text/html (and not asking for JSON).', content: html },
    404: problem('To any other client: nothing for an API client here.'),
  },
};

const openapiDocument = {
  method: 'get' as const,
  path: '/openapi.json',
  operationId: 'getOpenApiDocument',
  tags: documentation,
  summary: 'This OpenAPI 3.1 document',
  security: publicSecurity,
  responses: {
    200: {
      description: 'The document, generated from the zod schemas that validate requests.',
      content: { 'application/json': { schema: { type: 'object' as const, required: ['openapi', 'info', 'paths'] } } },
    },
  },
};

const referenceDocument = {
  method: 'get' as const,
  path: '/docs',
  operationId: 'getApiReference',
  tags: documentation,
  summary: 'The interactive API reference (HTML; its assets are served by hop)',
  security: publicSecurity,
  responses: { 200: { description: 'The reference page.', content: html } },
};

const assetDocument = {
  method: 'get' as const,
  path: '/docs/{asset}',
  operationId: 'getApiReferenceAsset',
  tags: documentation,
  summary: "A script or style of the API reference page",
  security: publicSecurity,
  request: {
    params: z.object({
      asset: z.enum(['init.js', ...(Object.keys(DOCS_ASSETS) as DocsAsset[])]).openapi({ param: { name: 'asset', in: 'path' } }),
    }),
  },
  responses: {
    200: {
      description: 'The file, cacheable for a day.',
      content: { 'text/javascript': { schema: z.string() }, 'text/css': { schema: z.string() } },
    },
    404: problem('No such file.'),
  },
};

export interface DocsOptions {
  /** The OpenAPI document of the whole app, built on the first request for it. */
  document: () => unknown;
  /** Where "Try it out" sends requests (HOP_BASE_URL): the reference's CSP allows it. */
  baseUrl: string;
  /** A reference file's text; by default the runtime's reader of the package (package.json `imports`). */
  readAsset?: (name: DocsAsset) => Promise<string>;
}

export function docsRoutes({ document, baseUrl, readAsset = loadAsset }: DocsOptions) {
  const router = createRouter();
  for (const route of [landingDocument, openapiDocument, referenceDocument, assetDocument]) {
    router.openAPIRegistry.registerPath(route);
    router.openAPIRegistry.registerPath(headOf(route));
  }
  const pageHeaders = (csp: string) => ({
    'content-type': 'text/html; charset=UTF-8',
    'cache-control': 'no-cache',
    'content-security-policy': csp,
  });
  const referenceCsp =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
    `connect-src 'self' ${new URL(baseUrl).origin}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  const assets = new Map<DocsAsset, Promise<string>>();

  return router
    .get('/', landing)
    .get('/openapi.json', (c) => c.json(document()))
    .get('/docs', (c) => c.body(REFERENCE_PAGE, 200, pageHeaders(referenceCsp)))
    .get('/docs/:asset', async (c) => {
      const name = c.req.param('asset');
      if (name === 'init.js') return c.body(INIT_SCRIPT, 200, assetHeaders('text/javascript; charset=utf-8'));
      if (!Object.hasOwn(DOCS_ASSETS, name)) throw new AppError('not_found', `Nothing at ${c.req.method} ${c.req.path}.`);
      const asset = name as DocsAsset;
      let text = assets.get(asset);
      if (!text) {
        text = readAsset(asset);
        assets.set(asset, text);
        // A failed read is tried again on the next request rather than remembered.
        text.catch(() => assets.delete(asset));
      }
      return c.body(await text, 200, assetHeaders(DOCS_ASSETS[asset]));
    });
}

/** The landing page alone, for a process that serves redirects but not the API (HOP_ROLE=redirect). */
export function landingRoutes() {
  const router = createRouter();
  router.openAPIRegistry.registerPath(landingDocument);
  router.openAPIRegistry.registerPath(headOf(landingDocument));
  return router.get('/', landing);
}

function landing(c: Context<AppEnv>) {
  if (!prefersHtml(c.req.header('accept'))) throw new AppError('not_found', `Nothing at ${c.req.method} ${c.req.path}.`);
  return c.body(LANDING_PAGE, 200, {
    'content-type': 'text/html; charset=UTF-8',
    'cache-control': 'no-cache',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  });
}

const assetHeaders = (contentType: string) => ({ 'content-type': contentType, 'cache-control': 'public, max-age=86400' });

/** The runtime's reader: Node and Bun read the package's file, the Worker imports it as a text module. */
async function loadAsset(name: DocsAsset): Promise<string> {
  const { readDocsAsset } = await import('#docs-assets');
  return readDocsAsset(name);
}
