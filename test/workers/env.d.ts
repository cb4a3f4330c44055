// Types of the Worker under test for cloudflare:test / cloudflare:workers: wrangler.toml's vars, queue producer,
// KV namespace and ratelimits bindings, and the main module.
declare namespace Cloudflare {
  interface Env {
    HOP_LOG_LEVEL: string;
    HOP_DATABASE_TIMEOUT_MS: string;
    HOP_CACHE: string;
    CLICKS: Queue;
    CACHE: KVNamespace;
    HOP_RATE_LIMIT: string;
    RATE_LIMIT_API: RateLimit;
    RATE_LIMIT_UNAUTHENTICATED: RateLimit;
    RATE_LIMIT_REDIRECT: RateLimit;
    RATE_LIMIT_NOT_FOUND: RateLimit;
  }
  interface GlobalProps {
    mainModule: typeof import('../../src/runtimes/worker.ts');
  }
}
