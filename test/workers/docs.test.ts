// The API reference inside workerd: its script and style reach the Worker as text modules (wrangler.toml `[[rules]]`,
// package.json `imports` with the `workerd` condition) and are served by the app, with no CDN.
import { describe, expect, it } from 'vitest';
import worker from '../../src/runtimes/worker.ts';

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
// The documents need no database: nothing listens on port 9, and nothing here connects to it.
const bindings = { HOP_DATABASE_URL: 'http://127.0.0.1:9' };

describe('/docs on Workers', () => {
  it('serves the reference page and its assets from the bundle', async () => {
    const page = await worker.fetch(new Request('http://localhost/docs'), bindings, ctx);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('/docs/swagger-ui-bundle.js');
    const script = await worker.fetch(new Request('http://localhost/docs/swagger-ui-bundle.js'), bindings, ctx);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await script.text()).toContain('SwaggerUIBundle');
    const style = await worker.fetch(new Request('http://localhost/docs/swagger-ui.css'), bindings, ctx);
    expect(style.status).toBe(200);
    expect((await style.text()).length).toBeGreaterThan(100_000);
  });
});
