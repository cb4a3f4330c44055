/**
 * What every OWASP category file (test/owasp/api*.test.ts) needs against a running black-box target: workspaces,
 * keys, links and domains created through the API, and a snapshot of all a workspace can see of itself, so that a
 * refused attack can be shown to have changed nothing. Requests go through the black-box suite's `call`.
 */
import { call, type CallInit, type SuiteTarget, type Workspace } from '../blackbox/suite.ts';

export interface Link {
  id: string;
  domain: string;
  slug: string;
  shortUrl: string;
  url: string;
  tags: string[];
  clicks: number;
  [field: string]: unknown;
}

export function owaspClient(target: () => SuiteTarget) {
  const api = (path: string, init?: CallInit) => call(target().baseUrl, path, init);

  async function created<T>(what: string, res: Response): Promise<T> {
    if (res.status !== 201) throw new Error(`${what}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  async function createWorkspace(name: string): Promise<Workspace> {
    const res = await api('/v1/workspaces', { method: 'POST', key: target().adminToken, json: { name } });
    const body = await created<{ id: string; name: string; apiKey: { key: string } }>('create workspace', res);
    return { id: body.id, name: body.name, key: body.apiKey.key };
  }

  const createLink = (ws: Workspace, body: Record<string, unknown>) =>
    api('/v1/links', { method: 'POST', key: ws.key, json: body }).then((res) => created<Link>('create link', res));

  const createKey = (ws: Workspace, scopes: string[]) =>
    api('/v1/keys', { method: 'POST', key: ws.key, json: { name: scopes.join(' '), scopes } }).then((res) =>
      created<{ id: string; key: string }>('create key', res),
    );

  const addDomain = (ws: Workspace, hostname: string) =>
    api('/v1/domains', { method: 'POST', key: ws.key, json: { hostname } }).then((res) =>
      created<{ id: string; hostname: string }>('add domain', res),
    );

  /** Everything a workspace can see of itself (first 100 links): a refused attack must leave it as it was. */
  async function snapshot(ws: Workspace): Promise<string> {
    const parts = await Promise.all(
      ['/v1/workspace', '/v1/links?limit=100', '/v1/keys', '/v1/domains'].map((path) =>
        api(path, { key: ws.key }).then(async (r) => `${r.status} ${await r.text()}`),
      ),
    );
    return parts.join('\n');
  }

  return { api, createWorkspace, createLink, createKey, addDomain, snapshot };
}
