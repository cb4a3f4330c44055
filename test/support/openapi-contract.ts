/**
 * Judging real answers against hop's OpenAPI document: which operation a request reached, whether its status, media
 * type, body (JSON Schema 2020-12 through ajv) and headers are the ones the document declares. Used by
 * test/contract/openapi.test.ts over the black-box suite's traffic.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS: its default export arrives wrapped under Node's ESM interop.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: Ajv2020) => void;

type Schema = Record<string, unknown>;

interface MediaType {
  schema?: Schema;
  'x-item-schema'?: Schema;
}

interface HeaderObject {
  required?: boolean;
  schema?: Schema;
}

interface ResponseObject {
  $ref?: string;
  description?: string;
  headers?: Record<string, HeaderObject | { $ref: string }>;
  content?: Record<string, MediaType>;
}

interface Operation {
  operationId?: string;
  responses: Record<string, ResponseObject>;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, unknown>>;
}

/** One exchange as the client saw it. */
export interface Exchange {
  method: string;
  url: string;
  status: number;
  headers: Headers;
  body: string;
}

export interface Verdict {
  /** The operation the request reached (`get /v1/links/{id}`), or undefined for a path or method hop does not serve. */
  operation: string | undefined;
  problems: string[];
}

export function contractChecker(document: OpenApiDocument) {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema(document as unknown as Schema, 'openapi');
  const validators = new Map<Schema, ReturnType<typeof ajv.compile>>();

  /** Schemas in the document refer to `#/components/...`: resolved against the document added as `openapi`. */
  const rebase = (schema: Schema): Schema =>
    JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', '"$ref":"openapi#/')) as Schema;
  const validator = (schema: Schema) => {
    let v = validators.get(schema);
    if (!v) {
      v = ajv.compile(rebase(schema));
      validators.set(schema, v);
    }
    return v;
  };
  const deref = <T>(value: T | { $ref: string }): T => {
    if (!value || typeof value !== 'object' || !('$ref' in value)) return value as T;
    let node: unknown = document;
    for (const part of value.$ref.slice(2).split('/')) node = (node as Record<string, unknown>)[part];
    return node as T;
  };

  // Literal paths before templated ones, so that /livez is not taken for /{slug}.
  const templates = Object.keys(document.paths)
    .map((path) => ({
      path,
      params: (path.match(/\{/g) ?? []).length,
      regex: new RegExp(`^${path.replace(/[.+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
    }))
    .sort((a, b) => a.params - b.params);

  function check(exchange: Exchange): Verdict {
    const problems: string[] = [];
    const { pathname } = new URL(exchange.url);
    const method = exchange.method.toLowerCase();
    const path = templates.find((t) => t.regex.test(pathname))?.path;
    const operation = path ? document.paths[path]![method] : undefined;
    const name = path && operation ? `${method} ${path}` : undefined;
    const contentType = exchange.headers.get('content-type')?.split(';')[0]!.trim().toLowerCase();
    if (!operation) {
      // A path or method hop does not serve: its 404 or 405 is a problem+json like every other error.
      if (![404, 405].includes(exchange.status) || contentType !== 'application/problem+json') {
        problems.push(`${exchange.method} ${pathname}: undocumented, answered ${exchange.status} ${contentType}`);
      }
      return { operation: name, problems };
    }
    const where = `${exchange.method} ${pathname} → ${exchange.status}`;
    const declared = operation.responses[String(exchange.status)] ?? operation.responses[`${String(exchange.status)[0]}XX`] ?? operation.responses.default;
    if (!declared) {
      problems.push(`${where}: status not declared for ${name}`);
      return { operation: name, problems };
    }
    const response = deref<ResponseObject>(declared);

    for (const [header, spec] of Object.entries(response.headers ?? {})) {
      const h = deref<HeaderObject>(spec);
      const value = exchange.headers.get(header);
      if (value === null) {
        if (h.required) problems.push(`${where}: required header ${header} missing`);
        continue;
      }
      if (h.schema && !validator(h.schema)(value)) problems.push(`${where}: header ${header}: ${JSON.stringify(value)} ${ajv.errorsText(validator(h.schema).errors)}`);
    }

    // HEAD answers have the GET's headers and no body: their media type is the GET's.
    const bodyless = method === 'head' || exchange.status === 204 || exchange.status === 304;
    const content = method === 'head' ? deref<ResponseObject>(document.paths[path!]!.get?.responses[String(exchange.status)] ?? {}).content : response.content;
    if (bodyless) {
      if (exchange.body !== '') problems.push(`${where}: a body where none may be`);
      if (contentType && content && !(contentType in content)) problems.push(`${where}: content type ${contentType} not declared`);
      return { operation: name, problems };
    }
    if (!content) {
      if (exchange.body !== '') problems.push(`${where}: a body (${contentType}) where the document declares none`);
      return { operation: name, problems };
    }
    const media = contentType ? content[contentType] : undefined;
    if (!media) {
      problems.push(`${where}: content type ${contentType} not among ${Object.keys(content).join(', ')}`);
      return { operation: name, problems };
    }
    const validate = (schema: Schema | undefined, value: unknown, what: string) => {
      if (!schema) return;
      const v = validator(schema);
      if (!v(value)) problems.push(`${where}: ${what} does not match its schema: ${ajv.errorsText(v.errors)} in ${JSON.stringify(value).slice(0, 300)}`);
    };
    if (contentType === 'application/json' || contentType === 'application/problem+json') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(exchange.body);
      } catch {
        problems.push(`${where}: ${contentType} body is not JSON`);
        return { operation: name, problems };
      }
      validate(media.schema, parsed, 'the body');
    } else if (contentType === 'application/x-ndjson') {
      validate(media.schema, exchange.body, 'the body');
      if (!media['x-item-schema']) problems.push(`${where}: NDJSON without x-item-schema`);
      for (const line of exchange.body.split('\n').filter(Boolean)) validate(media['x-item-schema'], JSON.parse(line), 'a line');
    } else {
      validate(media.schema, exchange.body, 'the body');
    }
    return { operation: name, problems };
  }

  /** Every operation of the document, as `method path`. */
  const operations = () =>
    Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`));

  return { check, operations };
}
