/** Composition of repositories and services over one database: shared by createApp and the CLI. */
import type { Config } from './config.ts';
import { createIdempotencyRepository } from './modules/idempotency/idempotency.repository.ts';
import { createIdempotencyService } from './modules/idempotency/idempotency.service.ts';
import { createLinksRepository } from './modules/links/links.repository.ts';
import { createLinksService } from './modules/links/links.service.ts';
import type { RedirectLookup } from './modules/redirect/redirect.lookup.ts';
import { createRedirectService } from './modules/redirect/redirect.service.ts';
import { createStatsRepository } from './modules/stats/stats.repository.ts';
import { createStatsService } from './modules/stats/stats.service.ts';
import { createWorkspacesRepository } from './modules/workspaces/workspaces.repository.ts';
import { createWorkspacesService } from './modules/workspaces/workspaces.service.ts';
import type { Orm } from './platform/db/client.ts';

/** `redirectLookup` replaces the portable redirect read (a runtime's faster adapter for the same database). */
export function createServices(orm: Orm, config: Config, adapters: { redirectLookup?: RedirectLookup } = {}) {
  const workspaces = createWorkspacesService(createWorkspacesRepository(orm), config);
  const linksRepository = createLinksRepository(orm);
  return {
    workspaces,
    links: createLinksService(linksRepository, workspaces, config),
    redirect: createRedirectService(adapters.redirectLookup ?? linksRepository, config.defaultDomain),
    idempotency: createIdempotencyService(createIdempotencyRepository(orm)),
    stats: createStatsService(createStatsRepository(orm), workspaces, config),
  };
}

export type Services = ReturnType<typeof createServices>;
