/** The one assertion of hop's error answers, in-process and over HTTP: RFC 9457 problem+json that leaks nothing. */
import type { Problem } from '../../src/http/problem.ts';

export type { Problem };

/** Stack frames, file paths, SQL or driver text: none of it may reach a client. */
const LEAK = /\n\s+at\s|\bat\s+\S+\.(?:ts|js):\d+|node_modules|sqlite|stack|\bselect\b.+\bfrom\b|\binsert\s+into\b|\bdelete\s+from\b|failed query/i;

/** Asserts the shape every error answer must have, and returns the problem document. */
export async function expectProblem(res: Response, status: number, type?: string): Promise<Problem> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text}`);
  const contentType = res.headers.get('content-type') ?? '';
  if (!contentType.startsWith('application/problem+json')) {
    throw new Error(`expected application/problem+json, got ${contentType}: ${text}`);
  }
  const body = JSON.parse(text) as Problem;
  if (body.status !== status || !body.type?.startsWith('urn:hop:problem:') || !body.title || !body.instance) {
    throw new Error(`malformed problem document: ${text}`);
  }
  if (type && body.type !== `urn:hop:problem:${type}`) throw new Error(`expected type ${type}, got ${body.type}: ${text}`);
  if (LEAK.test(text)) throw new Error(`problem leaks internals: ${text}`);
  return body;
}
