/**
 * The redirect's read for an embedded `file:` database on Node: a read-only libSQL connection with the lookup
 * statement prepared once. @libsql/client prepares every statement anew and builds rows column by column, which
 * made this one query cost about ten times more than the statement itself (docs/perf-history.md). Writes still go
 * through @libsql/client; in WAL mode this connection sees each write as soon as it commits.
 */
import Database from 'libsql';
import { links } from '../db/schema.ts';
import { REDIRECT_COLUMNS, type RedirectLink, type RedirectLookup } from '../modules/redirect/redirect.lookup.ts';

type Row = [
  id: string, workspaceId: string, domain: string, url: string, expiresAt: number | null, maxClicks: number | null, clicks: number,
  fallbackUrl: string | null, redirectStatus: number, cacheMaxAge: number, forwardQuery: number,
  iosUrl: string | null, androidUrl: string | null, geo: string | null,
];

const toLink = (r: Row): RedirectLink => ({
  id: r[0],
  workspaceId: r[1],
  domain: r[2],
  url: r[3],
  expiresAt: r[4] === null ? null : new Date(r[4]),
  maxClicks: r[5],
  clicks: r[6],
  fallbackUrl: r[7],
  redirectStatus: r[8],
  cacheMaxAge: r[9],
  forwardQuery: r[10] !== 0,
  iosUrl: r[11],
  androidUrl: r[12],
  geo: r[13] === null ? null : (JSON.parse(r[13]) as Record<string, string>),
});

export interface EmbeddedLookup extends RedirectLookup {
  close(): void;
}

/** `path` is the database file of a `file:` URL. */
export function createEmbeddedLookup(path: string): EmbeddedLookup {
  const db = new Database(path, { readonly: true });
  const columns = REDIRECT_COLUMNS.map((c) => `"${links[c].name}"`).join(', ');
  // get() rather than all(): libsql's all() iterates in JavaScript and cost more than the query itself. Two
  // probes in code rather than one `domain in (?, ?) order by ...`, whose sort built a temporary B-tree per click.
  const onDomain = db.prepare(`select ${columns} from "links" where "slug" = ? and "domain" = ?`).raw(true);
  const domainOwner = db.prepare(`select "workspace_id" from "domains" where "hostname" = ?`).raw(true);
  return {
    findLink(domain, slug) {
      // get() rather than all(): libsql's all() iterates in JavaScript and cost more than the query itself.
      const row = onDomain.get(slug, domain) as Row | undefined;
      return row && toLink(row);
    },
    domainOwner: (host) => (domainOwner.get(host) as [string] | undefined)?.[0],
    close: () => db.close(),
  };
}
