// Types of the Worker under test for cloudflare:test / cloudflare:workers: wrangler.toml's vars and queue producer,
// and the main module.
declare namespace Cloudflare {
  interface Env {
    HOP_LOG_LEVEL: string;
    HOP_DATABASE_TIMEOUT_MS: string;
    CLICKS: Queue;
  }
  interface GlobalProps {
    mainModule: typeof import('../../src/runtimes/worker.ts');
  }
}
