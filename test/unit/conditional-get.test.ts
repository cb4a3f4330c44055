// The router's rule for conditional GET, on routes made for the test: a GET of /v1 declaring a JSON answer gets it;
// a streamed one (NDJSON, CSV: the click export, the links export) never does, so it is answered before it ends.
import { createRoute } from '@hono/zod-openapi';
import { describe, expect, it } from 'vitest';
import { createRouter, jsonResponse } from '../../src/http/router.ts';
import * as z from '../../src/platform/zod.ts';

const Thing = z.object({ name: z.string() });
const get = (path: string, content: Record<string, object>) =>
  createRoute({ method: 'get', path, responses: { 200: { description: 'ok', content } } });

/** A body that sends one line and then never ends, as a long export does while the database is read. */
const endless = () =>
  new ReadableStream<Uint8Array>({
    start: (controller) => controller.enqueue(new TextEncoder().encode('{"n":1}\n')),
    pull: () => new Promise<void>(() => {}),
  });

function app() {
  return createRouter()
    .openapi(createRoute({ method: 'get', path: '/v1/thing', responses: { 200: jsonResponse(Thing, 'ok') } }), (c) =>
      c.json({ name: 'a' }, 200),
    )
    .openapi(get('/v1/things/export', { 'application/x-ndjson': { schema: Thing }, 'text/csv': { schema: z.string() } }), () =>
      new Response(endless(), { headers: { 'content-type': 'application/x-ndjson' } }),
    )
    .openapi(get('/v1/endless-json', { 'application/json': { schema: Thing } }), () =>
      new Response(endless(), { headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } }),
    )
    .openapi(get('/v1/not-json', { 'application/json': { schema: Thing } }), () =>
      new Response('plain', { headers: { 'content-type': 'text/plain' } }),
    )
    .openapi(createRoute({ method: 'get', path: '/elsewhere', responses: { 200: jsonResponse(Thing, 'ok') } }), (c) =>
      c.json({ name: 'b' }, 200),
    );
}

/** The answer, or a failure if it does not come within a second (a middleware reading the whole body would hang). */
async function answer(path: string, headers: Record<string, string> = {}): Promise<Response> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${path} was not answered before its body ended`)), 1000);
  });
  try {
    return await Promise.race([app().request(path, { headers }), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('conditional GET, by the route declaration', () => {
  it('gives a JSON GET of /v1 an ETag and a 304', async () => {
    const res = await answer('/v1/thing');
    expect(res.headers.get('cache-control')).toBe('private, no-cache');
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]{40}"$/);
    const again = await answer('/v1/thing', { 'if-none-match': etag });
    expect(again.status).toBe(304);
  });

  it.each([
    ['a streamed NDJSON/CSV GET', '/v1/things/export'],
    ['a JSON GET that set its own Cache-Control', '/v1/endless-json'],
  ])('answers %s at once, its first line readable before the body ends, with no ETag even to *', async (_what, path) => {
    const res = await answer(path, { 'if-none-match': '*' });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBeNull();
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('{"n":1}\n');
    await reader.cancel();
  });

  it.each([
    ['a route declared JSON that answers something else', '/v1/not-json'],
    ['a GET outside /v1', '/elsewhere'],
  ])('leaves alone %s', async (_what, path) => {
    const res = await answer(path, { 'if-none-match': '*' });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('cache-control')).toBeNull();
  });
});
