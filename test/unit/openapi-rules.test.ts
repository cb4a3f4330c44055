// The input rules the OpenAPI document states agree with what hop enforces (the same zod schemas): an input zod
// accepts, the document accepts too (a nullable PATCH field, a domain in capitals), and an input that breaks a rule
// the document states (a repeated tag or scope, an empty PATCH, a lower-case country, a non-http URL, a hostname
// with one label, a reserved slug, a long Idempotency-Key, an unknown dimension) both refuse.
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { IDEMPOTENCY_KEY_PATTERN } from '../../src/modules/idempotency/idempotency.service.ts';
import { CreateLinkSchema, UpdateLinkSchema } from '../../src/modules/links/links.schemas.ts';
import { StatsQuery } from '../../src/modules/stats/stats.schemas.ts';
import { CreateApiKeySchema, CreateDomainSchema } from '../../src/modules/workspaces/workspaces.schemas.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv2020,
) => void;

interface Parameter {
  name: string;
  in: string;
  schema: object;
}
type Document = { paths: Record<string, Record<string, { parameters?: Parameter[] }>> };

let t: TestApp;
let ajv: Ajv2020;
let document: Document;
beforeAll(async () => {
  t = await createTestApp();
  document = (await (await t.request('/openapi.json', { key: null })).json()) as Document;
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(document, 'openapi');
});
afterAll(() => t.close());

/** Whether the document's component accepts `input`. */
const documentAccepts = (component: string, input: unknown) => {
  const validate = ajv.getSchema(`openapi#/components/schemas/${component}`);
  if (!validate) throw new Error(`no component ${component}`);
  return validate(input) as boolean;
};

/** Whether the document's schema of a parameter accepts `value`. */
const parameterAccepts = (path: string, method: string, name: string, value: string) => {
  const parameter = document.paths[path]![method]!.parameters!.find((p) => p.name?.toLowerCase() === name)!;
  return ajv.compile(JSON.parse(JSON.stringify(parameter.schema).replaceAll('"#/', '"openapi#/')) as object)(value);
};

const zodAccepts = (schema: z.ZodType, input: unknown) => schema.safeParse(input).success;

const url = 'https://example.com/';
const geo51 = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`${String.fromCharCode(65 + Math.floor(i / 26))}${String.fromCharCode(65 + (i % 26))}`, url]));

const cases: Array<[string, z.ZodType, unknown, boolean]> = [
  ['CreateLink', CreateLinkSchema, { url }, true],
  ['CreateLink', CreateLinkSchema, { url: 'HTTP://Example.com/x?y=1' }, true],
  ['CreateLink', CreateLinkSchema, { url, slug: 'Launch_1', domain: 'Go.Example.COM', tags: ['a', 'b'], title: ' Hello ' }, true],
  ['CreateLink', CreateLinkSchema, { url, geo: { DE: 'https://example.de/' }, expiresAt: '2027-01-31T12:00:00+02:00' }, true],
  ['CreateLink', CreateLinkSchema, { url: 'ftp://example.com/' }, false],
  ['CreateLink', CreateLinkSchema, { url: 'https://exa mple.com/' }, false],
  ['CreateLink', CreateLinkSchema, { url, tags: ['a', 'a'] }, false],
  ['CreateLink', CreateLinkSchema, { url, geo: { de: url } }, false],
  ['CreateLink', CreateLinkSchema, { url, geo: geo51 }, false],
  ['CreateLink', CreateLinkSchema, { url, slug: 'Docs' }, false],
  ['CreateLink', CreateLinkSchema, { url, slug: 'v1' }, false],
  ['CreateLink', CreateLinkSchema, { url, title: 'a\u0007b' }, false],
  ['CreateLink', CreateLinkSchema, { url, title: '   ' }, false],
  ['CreateLink', CreateLinkSchema, { url, domain: 'go_example.com' }, false],
  ['CreateLink', CreateLinkSchema, { url, clicks: 3 }, false],
  ['UpdateLink', UpdateLinkSchema, { expiresAt: null, fallbackUrl: null, iosUrl: null, androidUrl: null }, true],
  ['UpdateLink', UpdateLinkSchema, { title: null, maxClicks: null, geo: null }, true],
  ['UpdateLink', UpdateLinkSchema, { expiresAt: '2027-01-31T12:00:00Z' }, true],
  ['UpdateLink', UpdateLinkSchema, {}, false],
  ['CreateApiKey', CreateApiKeySchema, { name: 'ci', scopes: ['links:read', 'links:write'] }, true],
  ['CreateApiKey', CreateApiKeySchema, { name: 'ci', scopes: ['links:read', 'links:read'] }, false],
  ['CreateApiKey', CreateApiKeySchema, { name: 'ci', scopes: [] }, false],
  ['CreateDomain', CreateDomainSchema, { hostname: 'Go.Example.COM' }, true],
  ['CreateDomain', CreateDomainSchema, { hostname: 'go.example.com.' }, true],
  ['CreateDomain', CreateDomainSchema, { hostname: 'xn--bcher-kva.example' }, true],
  ['CreateDomain', CreateDomainSchema, { hostname: 'example' }, false],
  ['CreateDomain', CreateDomainSchema, { hostname: '1.2.3.4' }, false],
  ['CreateDomain', CreateDomainSchema, { hostname: '-a.example.com' }, false],
  ['CreateDomain', CreateDomainSchema, { hostname: 'a..example.com' }, false],
  ['CreateDomain', CreateDomainSchema, { hostname: 'go.example.com:8080' }, false],
];

describe('request bodies: the document and zod agree', () => {
  it.each(cases.map(([component, schema, input, ok]) => [component, JSON.stringify(input).slice(0, 80), ok, schema, input] as const))(
    '%s %s: accepted %s by both',
    (component, _shown, ok, schema, input) => {
      expect(zodAccepts(schema, input)).toBe(ok);
      expect(documentAccepts(component, input)).toBe(ok);
    },
  );
});

describe('parameters: the document states the rules hop enforces', () => {
  it.each([
    ['country,os', true],
    ['referrer', true],
    ['country,country', true],
    ['country,,os', false],
    ['Country', false],
    ['city', false],
  ])('dimensions=%s: accepted %s by both', (dimensions, ok) => {
    expect(zodAccepts(StatsQuery, { dimensions })).toBe(ok);
    expect(parameterAccepts('/v1/stats', 'get', 'dimensions', dimensions)).toBe(ok);
  });

  it.each([
    ['retry-1', true],
    ['k'.repeat(255), true],
    ['k'.repeat(256), false],
    ['', false],
    ['with space', false],
  ])('Idempotency-Key %s: accepted %s by both', (key, ok) => {
    expect(IDEMPOTENCY_KEY_PATTERN.test(key)).toBe(ok);
    expect(parameterAccepts('/v1/links', 'post', 'idempotency-key', key)).toBe(ok);
  });
});
