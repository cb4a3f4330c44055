// OWASP API7:2023 Server Side Request Forgery, against hop on Bun over a file. hop fetches no URL a client gives it:
// a link's targets are only sent back in Location, for the visitor's browser to follow. What remains is a link
// that points at hop itself (a redirect loop through the server, or a way to make a visitor's browser call hop's
// loopback-only endpoints): loopback addresses in every spelling the URL parser normalises, hop's own short-link
// hosts, and schemes other than http(s) are refused in every target field, storing nothing.
import { beforeAll, expect, it } from 'vitest';
import { expectProblem, type Workspace } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { owaspClient } from './client.ts';

describeTarget({ runtime: 'bun', storage: 'file' }, (target) => {
  const { api, createWorkspace, createLink, addDomain, snapshot } = owaspClient(target);
  let ws: Workspace;

  beforeAll(async () => {
    ws = await createWorkspace('api7');
    await addDomain(ws, 'api7.example.com');
  });

  async function refused(json: Record<string, unknown>, field: string, message: RegExp) {
    const before = await snapshot(ws);
    const problem = await expectProblem(await api('/v1/links', { method: 'POST', key: ws.key, json }), 400, 'validation');
    expect(problem.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field, message: expect.stringMatching(message) })]));
    expect(await snapshot(ws)).toBe(before);
  }

  it.each([
    'http://127.0.0.1/metrics',
    'http://127.1:8080/',
    'http://0x7f000001/',
    'http://2130706433/',
    'http://0177.0.0.1/',
    'http://0.0.0.0/',
    'http://0/',
    'http://localhost/',
    'http://LOCALHOST./',
    'http://admin.localhost/',
    'http://[::1]/',
    'http://[0:0:0:0:0:0:0:1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::]/',
  ])('refuses a link to the loopback address %s', async (url) => {
    await refused({ url }, 'url', /short-link host of hop/);
  });

  it("refuses a link to hop's own short-link hosts: the default domain and the workspace's domains, in any spelling", async () => {
    await refused({ url: `${target().publicUrl}/x` }, 'url', /short-link host of hop/);
    await refused({ url: 'https://api7.example.com/x' }, 'url', /short-link host of hop/);
    await refused({ url: 'https://API7.Example.COM./x' }, 'url', /short-link host of hop/);
  });

  it.each(['fallbackUrl', 'iosUrl', 'androidUrl', 'geo.FR'])('checks %s as it checks url', async (field) => {
    const json: Record<string, unknown> = { url: 'https://example.com/' };
    if (field === 'geo.FR') json.geo = { FR: 'http://127.0.0.1/' };
    else json[field] = 'http://127.0.0.1/';
    if (field === 'fallbackUrl') json.expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    await refused(json, field, /short-link host of hop/);
  });

  it.each([
    'javascript:alert(document.cookie)',
    'JavaScript:alert(1)',
    ' javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'file:///etc/passwd',
    'gopher://127.0.0.1:6379/_FLUSHALL',
    'ftp://example.com/',
    '//127.0.0.1/',
  ])('refuses the target %j', async (url) => {
    await refused({ url }, 'url', /./);
  });

  it("accepts a private address as a target: the visitor's browser goes there, hop never fetches it", async () => {
    const link = await createLink(ws, { url: 'http://10.0.0.1/intranet', slug: 'api7-private' });
    const res = await api(`/${link.slug}`);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://10.0.0.1/intranet');
  });

  it('refuses a PATCH that moves an existing link onto loopback, leaving it as it was', async () => {
    const link = await createLink(ws, { url: 'https://example.com/ok' });
    const res = await api(`/v1/links/${link.id}`, { method: 'PATCH', key: ws.key, json: { url: 'http://[::1]:6379/' } });
    await expectProblem(res, 400, 'validation');
    const read = (await (await api(`/v1/links/${link.id}`, { key: ws.key })).json()) as { url: string };
    expect(read.url).toBe('https://example.com/ok');
  });
});
