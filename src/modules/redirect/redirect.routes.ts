/**
 * `GET|HEAD /{slug}` on any short-link host: the redirect. Unknown slugs answer 404 problem+json, or a small HTML
 * page when the client prefers text/html; exhausted links 410 the same way.
 */
import { Hono } from 'hono';
import { AppError } from '../../errors.ts';
import type { AppEnv } from '../../http/env.ts';
import { canonicalHost } from '../workspaces/workspaces.service.ts';
import type { RedirectService } from './redirect.service.ts';

const page = (status: number, title: string, text: string) =>
  `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
  `<title>${status} ${title}</title><body style="font:16px system-ui;margin:4rem auto;max-width:32rem">` +
  `<h1>${title}</h1><p>${text}</p></body></html>`;

const pages = {
  not_found: { status: 404, title: 'Link not found', text: 'There is no short link at this address.' },
  gone: { status: 410, title: 'Link no longer available', text: 'This short link has expired or reached its click limit.' },
} as const;

const prefersHtml = (accept: string | undefined) =>
  !!accept && accept.includes('text/html') && !accept.includes('application/json');

export function redirectRoutes(service: RedirectService, geoHeader: string, now: () => Date) {
  return new Hono<AppEnv>().get('/:slug', async function redirect(c) {
    const req = c.req.raw;
    const url = new URL(req.url);
    const outcome = await service.resolve({
      host: canonicalHost(url.hostname),
      slug: c.req.param('slug'),
      search: url.search,
      userAgent: req.headers.get('user-agent') ?? undefined,
      country: req.headers.get(geoHeader) ?? undefined,
      now: now(),
    });
    if (outcome.kind === 'redirect') {
      return c.body(null, outcome.status as 301 | 302 | 307 | 308, {
        location: outcome.location,
        'cache-control': outcome.cacheControl,
      });
    }
    const p = pages[outcome.kind];
    if (prefersHtml(req.headers.get('accept') ?? undefined)) {
      return c.html(page(p.status, p.title, p.text), p.status, {
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
      });
    }
    const code = outcome.kind === 'gone' ? 'link_gone' : 'not_found';
    throw new AppError(code, p.text);
  });
}
