/**
 * zod for hop's schemas, with `.openapi()` metadata. Importing @hono/zod-openapi extends zod's ZodType once (its
 * side effect). Modules use `import * as z from '.../platform/zod.ts'` and never pass `z` around whole, so a
 * bundler keeps only the parts hop uses; zod's own `z` object, once it escapes, keeps every locale (~100 KiB gzip,
 * docs/perf-history.md).
 */
import '@hono/zod-openapi';

export * from 'zod';
