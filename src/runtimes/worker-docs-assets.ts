/**
 * The API reference's files in the Worker (package.json `imports`, `#docs-assets`, condition `workerd`): wrangler
 * bundles them as text modules (the `[[rules]]` of wrangler.toml), uploaded beside the script.
 */
import bundle from 'swagger-ui-dist/swagger-ui-bundle.js';
import style from 'swagger-ui-dist/swagger-ui.css';
import type { DocsAsset } from '../modules/docs/docs.routes.ts';

const files: Record<DocsAsset, string> = { 'swagger-ui-bundle.js': bundle, 'swagger-ui.css': style };

export const readDocsAsset = async (name: DocsAsset): Promise<string> => files[name];
