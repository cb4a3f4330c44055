/** Shapes of workspaces, API keys and domains: request bodies, responses and their OpenAPI components. */
import * as z from '../../platform/zod.ts';
import { scopes } from '../context.ts';
import { canonicalHost } from '../hosts.ts';
import { PlainText, Timestamp } from '../shared.schemas.ts';

export const ScopeSchema = z.enum(scopes).openapi('Scope');

export const WorkspaceSchema = z
  .object({ id: z.string(), name: z.string(), createdAt: Timestamp })
  .openapi('Workspace');

export const CreateWorkspaceSchema = z.strictObject({ name: PlainText(100) }).openapi('CreateWorkspace');

export const ApiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string().openapi({ description: 'The first characters of the key, to recognise it.' }),
    scopes: z.array(ScopeSchema),
    createdAt: Timestamp,
  })
  .openapi('ApiKey');

export const CreatedApiKeySchema = ApiKeySchema.extend({
  key: z.string().openapi({ description: 'The secret key. Shown once, stored only as a hash.' }),
}).openapi('CreatedApiKey');

export const CreatedWorkspaceSchema = WorkspaceSchema.extend({
  apiKey: CreatedApiKeySchema.openapi({ description: 'The workspace admin key, shown once.' }),
}).openapi('CreatedWorkspace');

export const CreateApiKeySchema = z
  .strictObject({
    name: PlainText(100),
    scopes: z
      .array(ScopeSchema)
      .min(1, 'must name at least one scope')
      .refine((s) => new Set(s).size === s.length, 'must not repeat a scope')
      .openapi({ uniqueItems: true }),
  })
  .openapi('CreateApiKey');

export const ApiKeyListSchema = z.object({ data: z.array(ApiKeySchema) }).openapi('ApiKeyList');

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * HostnameSchema's rule as one pattern for the document: labels in either case (hop lower-cases them), at least two,
 * the last not all digits, trailing dots allowed (DNS's root, dropped).
 */
const HOSTNAME_PATTERN =
  '^(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\\.)+(?![0-9]+\\.*$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)\\.*$';

/** A DNS hostname in ASCII (punycode for IDNs): at least two labels, not an IP address. */
export const HostnameSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(253, 'must be at most 253 characters')
  .transform(canonicalHost)
  .refine((h) => {
    const labels = h.split('.');
    return labels.length >= 2 && labels.every((l) => LABEL.test(l)) && !/^[0-9]+$/.test(labels.at(-1) ?? '');
  }, 'must be a DNS hostname such as go.example.com (no scheme, port or path; IDNs in punycode)')
  .openapi({ type: 'string', pattern: HOSTNAME_PATTERN, example: 'go.example.com' });

export const DomainSchema = z
  .object({ id: z.string(), hostname: z.string(), createdAt: Timestamp })
  .openapi('Domain');

export const CreateDomainSchema = z.strictObject({ hostname: HostnameSchema }).openapi('CreateDomain');
export const DomainListSchema = z.object({ data: z.array(DomainSchema) }).openapi('DomainList');

export type CreateWorkspaceInput = z.infer<typeof CreateWorkspaceSchema>;
export type CreateApiKeyInput = z.infer<typeof CreateApiKeySchema>;
export type CreateDomainInput = z.infer<typeof CreateDomainSchema>;
export type Workspace = z.infer<typeof WorkspaceSchema>;
export type ApiKey = z.infer<typeof ApiKeySchema>;
export type CreatedApiKey = z.infer<typeof CreatedApiKeySchema>;
export type Domain = z.infer<typeof DomainSchema>;
