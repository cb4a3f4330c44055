/** The minimal RESP2 client under the Upstash REST proxy; it lives in src/cli/ for `npm run stack`. */
export * from '../../src/cli/resp.ts';
