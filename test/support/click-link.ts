/**
 * For the end-to-end click tests: against a running hop, create a workspace (operator token) and one link, then
 * visit it and read its stored count through the API as a client would.
 */
import { IPHONE } from './agents.ts';

export interface ClickLink {
  id: string;
  /** Headers of the new workspace's admin key. */
  auth: Record<string, string>;
  /** Follows the short link `n` times at once and returns the statuses. */
  visit(n: number): Promise<number[]>;
  /** The link's stored click count, from `GET /v1/links/{id}`. */
  clicks(): Promise<number>;
}

export async function createClickLink(base: string, adminToken: string, slug: string, userAgent = IPHONE): Promise<ClickLink> {
  const ws = await fetch(`${base}/v1/workspaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'clicks' }),
  });
  const key = ((await ws.json()) as { apiKey: { key: string } }).apiKey.key;
  const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const link = await fetch(`${base}/v1/links`, { method: 'POST', headers: auth, body: JSON.stringify({ url: 'https://example.com/', slug }) });
  const { id } = (await link.json()) as { id: string };
  const once = () => fetch(`${base}/${slug}`, { redirect: 'manual', headers: { 'user-agent': userAgent } }).then((r) => r.status);
  return {
    id,
    auth,
    visit: (n) => Promise.all(Array.from({ length: n }, once)),
    clicks: async () => ((await (await fetch(`${base}/v1/links/${id}`, { headers: auth })).json()) as { clicks: number }).clicks,
  };
}
