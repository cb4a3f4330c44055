/**
 * Idempotency-Key semantics for POSTs: the first request with a key runs and its success is stored for 24 hours;
 * a retry with the same key and body gets the stored answer; the same key with another body is refused (422);
 * a retry while the first is still running is refused (409). Refused or failed requests leave no record.
 */
import { AppError } from '../../errors.ts';
import { sha256Hex } from '../../platform/crypto.ts';
import type { IdempotencyRepository } from './idempotency.repository.ts';

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** A pending record older than this belongs to a request that died; a retry may take it over. */
export const PENDING_TIMEOUT_MS = 60 * 1000;
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface StoredResponse {
  status: number;
  contentType: string | null;
  location: string | null;
  body: string;
}

export type BeginResult = { kind: 'started' } | { kind: 'replay'; response: StoredResponse };

export function createIdempotencyService(repo: IdempotencyRepository) {
  async function begin(workspaceId: string, key: string, request: string, now: Date): Promise<BeginResult> {
    const fingerprint = await sha256Hex(request);
    // Expired records go whenever a keyed request arrives, so the table holds at most a day of keys.
    await repo.purgeExpired(now);
    const record = {
      workspaceId,
      key,
      fingerprint,
      status: null,
      contentType: null,
      location: null,
      body: null,
      createdAt: now,
      expiresAt: new Date(now.getTime() + IDEMPOTENCY_TTL_MS),
    };
    if (await repo.tryInsert(record)) return { kind: 'started' };
    const existing = await repo.get(workspaceId, key);
    if (!existing) return begin(workspaceId, key, request, now);
    if (existing.fingerprint !== fingerprint) {
      throw new AppError('idempotency_mismatch', 'This Idempotency-Key was already used with a different request.');
    }
    if (existing.status === null || existing.body === null) {
      if (now.getTime() - existing.createdAt.getTime() > PENDING_TIMEOUT_MS) {
        await repo.remove(workspaceId, key);
        return begin(workspaceId, key, request, now);
      }
      throw new AppError('idempotency_in_progress', 'The first request with this Idempotency-Key has not finished.', {
        retryAfterS: 1,
      });
    }
    return {
      kind: 'replay',
      response: {
        status: existing.status,
        contentType: existing.contentType,
        location: existing.location,
        body: existing.body,
      },
    };
  }

  return {
    begin,
    complete: (workspaceId: string, key: string, response: StoredResponse) =>
      repo.complete(workspaceId, key, response),
    abandon: (workspaceId: string, key: string) => repo.remove(workspaceId, key),
  };
}

export type IdempotencyService = ReturnType<typeof createIdempotencyService>;
