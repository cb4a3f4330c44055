/**
 * A diagnostic target: the smallest Worker, answering every request with the same 302. bench/redirect.ts serves it
 * with `wrangler dev` (bench/workerd-bare.toml), as hop's Worker row is served, and with workerd alone (a config
 * the harness writes), so that the cost of workerd and the cost of wrangler's dev stack show separately.
 * Plain JavaScript: workerd loads it as it is, without a build step.
 */
export default {
  fetch: () => new Response(null, { status: 302, headers: { location: 'https://example.com/' } }),
};
