/**
 * The API reference's files for Node and Bun (package.json `imports`, `#docs-assets`): read from the installed
 * swagger-ui-dist package. The Worker's twin is worker-docs-assets.ts.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { DocsAsset } from '../modules/docs/docs.routes.ts';

export const readDocsAsset = (name: DocsAsset): Promise<string> =>
  readFile(fileURLToPath(import.meta.resolve(`swagger-ui-dist/${name}`)), 'utf8');
