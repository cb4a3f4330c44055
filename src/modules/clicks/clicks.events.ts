/**
 * Making the click event where the redirect happens: an id (time-ordered, the deduplication key), the time, the
 * link, and the few request facts statistics need. Cheap on purpose: it runs on every click.
 */
import { newId } from '../../platform/crypto.ts';
import { EVENT_LIMITS, type LinkClickEvent, type OrphanEvent } from './clicks.schemas.ts';

export interface ClickFacts {
  at: number;
  userAgent: string | null;
  referer: string | null;
  country: string | null;
  head: boolean;
}

const cut = (value: string | null, max: number) => (value && value.length > max ? value.slice(0, max) : value);
const COUNTRY = /^[A-Za-z]{2}$/;

export function linkClick(workspaceId: string, linkId: string, facts: ClickFacts): LinkClickEvent {
  return {
    v: 1,
    kind: 'click',
    id: newId('clk'),
    at: facts.at,
    workspaceId,
    linkId,
    // "XX" and "T1" (unknown, Tor) from Cloudflare are not countries.
    country: facts.country && COUNTRY.test(facts.country) && facts.country !== 'XX' ? facts.country.toUpperCase() : null,
    userAgent: cut(facts.userAgent, EVENT_LIMITS.userAgent),
    referrer: referrerHost(facts.referer),
    head: facts.head,
  };
}

export function orphanVisit(domain: string, slug: string, facts: ClickFacts): OrphanEvent {
  return {
    v: 1,
    kind: 'orphan',
    id: newId('clk'),
    at: facts.at,
    domain,
    slug: slug.slice(0, EVENT_LIMITS.slug),
    userAgent: cut(facts.userAgent, EVENT_LIMITS.userAgent),
    head: facts.head,
  };
}

/** The host of a Referer header (lower case), or null: paths and queries of where a click came from are not kept. */
export function referrerHost(referer: string | null | undefined): string | null {
  if (!referer) return null;
  const start = referer.indexOf('//');
  if (start === -1) return null;
  const rest = referer.slice(start + 2);
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const host = authority.slice(authority.lastIndexOf('@') + 1).replace(/:\d*$/, '').toLowerCase();
  return /^[a-z0-9.-]{1,253}$/.test(host) ? host : null;
}
