/** The Upstash-REST-compatible proxy in front of a real redis-server; it lives in src/cli/ for `npm run stack`. */
export * from '../../src/cli/upstash-rest.ts';
