/**
 * Shapes of links: the input rules of PRODUCT.md (target URLs, slugs, tags, geo targets...), the Link resource,
 * and the list query. Rules that need the database (own hosts, owned domains) live in the service.
 */
import * as z from '../../platform/zod.ts';
import { canonicalHost } from '../hosts.ts';
import { CONTROL_CHARS, IsoDateTime, LONE_SURROGATE, PlainText, QueryInt, Timestamp } from '../shared.schemas.ts';

export const MAX_URL_LENGTH = 2048;
export const SLUG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export const GENERATED_SLUG_LENGTH = 7;

/** Paths hop serves itself, and words kept back for later ones; compared case-insensitively. */
export const RESERVED_SLUGS: ReadonlySet<string> = new Set([
  'v1', 'v2', 'api', 'docs', 'openapi.json', 'livez', 'readyz', 'healthz', 'health', 'metrics', 'status',
  'favicon.ico', 'robots.txt', '.well-known', 'admin', 'login', 'logout', 'static', 'assets',
]);

export const isReservedSlug = (slug: string) => RESERVED_SLUGS.has(slug.toLowerCase());

/** `abc` → `[aA][bB][cC]`: JSON Schema patterns have no case-insensitive flag. */
const anyCase = (word: string) => word.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`);

/** SLUG_PATTERN without the reserved words (those with a dot cannot match it anyway), for the document. */
const SLUG_DOCUMENT_PATTERN =
  `^(?!(?:${[...RESERVED_SLUGS].filter((w) => SLUG_PATTERN.test(w)).map(anyCase).join('|')})$)` + SLUG_PATTERN.source.slice(1);

/**
 * What a pattern can say of a target URL: an http or https scheme (any case, as the URL parser reads it), then no
 * whitespace or control character.
 */
const TARGET_URL_PATTERN = '^[Hh][Tt][Tt][Pp][Ss]?:[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$';

const COUNTRY_CODE = /^[A-Z]{2}$/;
const MAX_GEO_TARGETS = 50;

/** An absolute http(s) URL without credentials or control characters, at most 2048 characters. */
export const TargetUrl = z
  .string()
  .max(MAX_URL_LENGTH, `must be at most ${MAX_URL_LENGTH} characters`)
  .superRefine((value, ctx) => {
    if (CONTROL_CHARS.test(value) || /\s/.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'must not contain whitespace or control characters' });
      return;
    }
    if (LONE_SURROGATE.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'must be valid Unicode (no lone surrogates)' });
      return;
    }
    const url = URL.parse(value);
    if (!url) return void ctx.addIssue({ code: 'custom', message: 'must be an absolute URL' });
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return void ctx.addIssue({ code: 'custom', message: 'must use http or https' });
    }
    if (url.username || url.password) {
      return void ctx.addIssue({ code: 'custom', message: 'must not contain credentials (user:password@)' });
    }
    if (!url.hostname) ctx.addIssue({ code: 'custom', message: 'must have a host' });
  })
  .transform((value, ctx) => {
    // Normalising percent-encodes non-ASCII characters, which can make the stored URL longer than the input.
    const href = new URL(value).href;
    if (href.length <= MAX_URL_LENGTH) return href;
    ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_URL_LENGTH} characters once normalised` });
    return z.NEVER;
  })
  // No `type`: it would replace the generated one, which is ["string", "null"] where a field is nullable.
  .openapi({
    format: 'uri',
    maxLength: MAX_URL_LENGTH,
    pattern: TARGET_URL_PATTERN,
    description: 'An absolute http(s) URL without credentials (user:password@), not on one of hop\'s own short-link hosts.',
    example: 'https://example.com/launch?utm_source=hop',
  });

export const SlugSchema = z
  .string()
  .regex(SLUG_PATTERN, 'must be 1-64 characters of A-Z, a-z, 0-9, "_" or "-", starting with a letter or digit')
  .refine((s) => !isReservedSlug(s), 'is reserved')
  .openapi({ pattern: SLUG_DOCUMENT_PATTERN, description: 'Not a reserved word (v1, docs, metrics...), in any case.', example: 'launch' });

export const LinkDomainSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(253)
  .regex(/^[a-z0-9.-]+$/, 'must be a hostname such as go.example.com')
  .transform(canonicalHost)
  // Matched once lower-cased: the document's pattern takes either case.
  .openapi({ pattern: '^[A-Za-z0-9.-]+$', description: 'A domain the workspace owns, or the default domain (when omitted).' });

const TagSchema = PlainText(50);
const Tags = z
  .array(TagSchema)
  .max(20, 'must have at most 20 tags')
  .refine((t) => new Set(t).size === t.length, 'must not repeat a tag')
  .openapi({ uniqueItems: true });

const Geo = z
  .record(z.string().regex(COUNTRY_CODE, 'must be an ISO 3166-1 alpha-2 country code in capitals'), TargetUrl)
  .refine((g) => Object.keys(g).length <= MAX_GEO_TARGETS, `must have at most ${MAX_GEO_TARGETS} countries`)
  .openapi({
    // JSON Schema's propertyNames (3.1), which the metadata type does not list; the generator copies it as given.
    ...({ propertyNames: { pattern: COUNTRY_CODE.source } } as object),
    maxProperties: MAX_GEO_TARGETS,
    description: 'ISO 3166-1 alpha-2 country code (capitals) → target URL.',
    example: { DE: 'https://example.de/', FR: 'https://example.fr/' },
  });

const RedirectStatus = z
  .union([z.literal(301), z.literal(302), z.literal(307), z.literal(308)], {
    error: 'must be one of 301, 302, 307, 308',
  })
  .openapi({ type: 'integer', enum: [301, 302, 307, 308] });

const MaxClicks = z.number().int('must be an integer').min(1).max(1e12);
const CacheMaxAge = z.number().int('must be an integer').min(0).max(31_536_000);

export const CreateLinkSchema = z
  .strictObject({
    url: TargetUrl,
    slug: SlugSchema.optional(),
    domain: LinkDomainSchema.optional(),
    title: PlainText(200).optional(),
    tags: Tags.optional(),
    expiresAt: IsoDateTime.optional(),
    maxClicks: MaxClicks.optional(),
    fallbackUrl: TargetUrl.optional(),
    redirectStatus: RedirectStatus.optional(),
    cacheMaxAge: CacheMaxAge.optional(),
    forwardQuery: z.boolean().optional(),
    iosUrl: TargetUrl.optional(),
    androidUrl: TargetUrl.optional(),
    geo: Geo.optional(),
  })
  .openapi('CreateLink');

/** Every field optional; `null` clears an optional field. */
export const UpdateLinkSchema = z
  .strictObject({
    url: TargetUrl.optional(),
    slug: SlugSchema.optional(),
    domain: LinkDomainSchema.optional(),
    title: PlainText(200).nullable().optional(),
    tags: Tags.optional(),
    expiresAt: IsoDateTime.nullable().optional(),
    maxClicks: MaxClicks.nullable().optional(),
    fallbackUrl: TargetUrl.nullable().optional(),
    redirectStatus: RedirectStatus.optional(),
    cacheMaxAge: CacheMaxAge.optional(),
    forwardQuery: z.boolean().optional(),
    iosUrl: TargetUrl.nullable().optional(),
    androidUrl: TargetUrl.nullable().optional(),
    geo: Geo.nullable().optional(),
  })
  .refine((o) => Object.keys(o).length > 0, 'must change at least one field')
  .openapi('UpdateLink', { minProperties: 1 });

export const LinkSchema = z
  .object({
    id: z.string(),
    domain: z.string(),
    slug: z.string(),
    shortUrl: z.string().openapi({ format: 'uri' }),
    url: z.string().openapi({ format: 'uri' }),
    title: z.string().nullable(),
    tags: z.array(z.string()),
    expiresAt: Timestamp.nullable(),
    maxClicks: z.number().int().nullable(),
    fallbackUrl: z.string().nullable(),
    redirectStatus: z.number().int(),
    cacheMaxAge: z.number().int(),
    forwardQuery: z.boolean(),
    iosUrl: z.string().nullable(),
    androidUrl: z.string().nullable(),
    geo: z.record(z.string(), z.string()),
    clicks: z.number().int(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi('Link');

export const ListLinksQuery = z.strictObject({
  limit: QueryInt(1, 100).default(20),
  cursor: z.string().max(200).optional().openapi({ description: 'The `nextCursor` of the previous page.' }),
  domain: LinkDomainSchema.optional(),
  tag: TagSchema.optional(),
  q: PlainText(200).optional().openapi({ description: 'Case-insensitive text search in slug, URL and title.' }),
  createdAfter: IsoDateTime.optional(),
  createdBefore: IsoDateTime.optional(),
});

export const LinkListSchema = z
  .object({ data: z.array(LinkSchema), nextCursor: z.string().nullable() })
  .openapi('LinkList');

export type CreateLinkInput = z.infer<typeof CreateLinkSchema>;
export type UpdateLinkInput = z.infer<typeof UpdateLinkSchema>;
export type ListLinksInput = z.infer<typeof ListLinksQuery>;
export type Link = z.infer<typeof LinkSchema>;
