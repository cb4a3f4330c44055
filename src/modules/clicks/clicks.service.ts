/**
 * The click consumer's rules: validate each queued message (a malformed one is rejected for the dead-letter queue,
 * the rest of its batch still stored), classify the user agent, and store the batch once (see the repository).
 * Every queue adapter hands its batches here.
 */
import { classify } from './clicks.classify.ts';
import { ClickEventSchema, type ClickEvent } from './clicks.schemas.ts';
import type { ClickRow, ClicksRepository, OrphanRow } from './clicks.repository.ts';

export interface IngestResult {
  /** Messages stored by this call (not counting those an earlier delivery had stored). */
  stored: number;
  /** Messages that were valid but already stored (a redelivery). */
  duplicates: number;
  /** Indexes of the messages that are not click events, with why: for the dead-letter queue. */
  rejected: Array<{ index: number; reason: string }>;
  /** Links with a maxClicks whose count moved: the link cache must drop them (see the repository). */
  limited: Array<{ domain: string; slug: string }>;
}

export function createClicksService(repository: ClicksRepository) {
  return {
    async ingest(messages: readonly unknown[]): Promise<IngestResult> {
      const clickRows: ClickRow[] = [];
      const orphanRows: OrphanRow[] = [];
      const rejected: IngestResult['rejected'] = [];
      const seen = new Set<string>();
      messages.forEach((message, index) => {
        const parsed = ClickEventSchema.safeParse(message);
        if (!parsed.success) {
          rejected.push({ index, reason: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') });
          return;
        }
        const event = parsed.data;
        // The same message twice in one batch (a redelivery that caught up) is one row.
        if (seen.has(event.id)) return;
        seen.add(event.id);
        toRow(event, clickRows, orphanRows);
      });
      const valid = clickRows.length + orphanRows.length;
      if (!valid) return { stored: 0, duplicates: 0, rejected, limited: [] };
      const stored = await repository.ingest(clickRows, orphanRows);
      const count = stored.clicks + stored.orphans;
      return { stored: count, duplicates: messages.length - rejected.length - count, rejected, limited: stored.limited };
    },

    /** Deletes raw clicks older than `retentionDays`; rollups (and so statistics) stay. */
    purge(now: Date, retentionDays: number, limit = 5000) {
      return repository.purge(new Date(now.getTime() - retentionDays * 86_400_000), limit);
    },
  };
}

function toRow(event: ClickEvent, clickRows: ClickRow[], orphanRows: OrphanRow[]) {
  const c = classify(event.userAgent, event.head);
  const at = event.at;
  if (event.kind === 'click') {
    clickRows.push({
      id: event.id,
      workspaceId: event.workspaceId,
      linkId: event.linkId,
      at,
      country: event.country,
      device: c.device,
      browser: c.browser,
      os: c.os,
      referrer: event.referrer,
      bot: c.bot,
    });
  } else {
    orphanRows.push({ id: event.id, domain: event.domain, slug: event.slug, at, bot: c.bot });
  }
}

export type ClicksService = ReturnType<typeof createClicksService>;
