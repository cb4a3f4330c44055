// Types of the Worker under test for cloudflare:test / cloudflare:workers: wrangler.toml's vars, queue producer and KV namespace,
// and the main module.
declare namespace Cloudflare {
  interface Env {
    HOP_LOG_LEVEL: string;
    HOP_DATABASE_TIMEOUT_MS: string;
    HOP_CACHE: string;
    CLICKS: Queue;
    CACHE: KVNamespace;
  }
  interface GlobalProps {
    mainModule: typeof import('../../src/runtimes/worker.ts');
  }
}
