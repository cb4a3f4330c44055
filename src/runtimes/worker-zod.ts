/**
 * The Worker bundle's "zod" (wrangler.toml `[alias]`): all of zod, but its `z` export is only what
 * @hono/zod-openapi reads from it (ZodType, to add `.openapi()`). @hono/zod-openapi passes zod's `z` object to a
 * function and re-exports it, which made the bundler keep every zod locale; hop imports zod by namespace instead
 * (src/platform/zod.ts), so nothing else needs that object.
 */
import { ZodType } from 'zod/v4';

export * from 'zod/v4';
export const z = { ZodType };
