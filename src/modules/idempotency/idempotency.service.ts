/**
 * Idempotency-Key semantics for POSTs: the first request with a key runs and its success is stored for 24 hours;
 * a retry with the same key and body gets the stored answer; the same key with another body is refused (422);
 * a retry while the first is still running is refused (409). A refused request leaves no record. A request that
 * failed without a known outcome (the database did not answer in time: its write may still commit) leaves its record
 * released, and a retry runs it again as the same attempt: with the same seed, from which a create derives the id
 * of what it stores, so the retry meets the first attempt's row instead of storing a second one.
 */
import { AppError } from '../../errors.ts';
import { sha256Hex } from '../../platform/crypto.ts';
import { RELEASED, type IdempotencyRepository } from './idempotency.repository.ts';

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

/**
 * `seed`: a digest of (workspace, key, request). A create derives the id of what it stores from it, so that when a
 * write's outcome is unknown (the database did not answer in time: the record is abandoned, the write may still
 * commit) the retry meets the first attempt's row instead of storing a second one.
 */
export type BeginResult = { kind: 'started'; seed: string } | { kind: 'replay'; response: StoredResponse };

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
    const seedOf = (createdAt: Date) => sha256Hex(`${workspaceId}\n${key}\n${fingerprint}\n${createdAt.getTime()}`);
    if (await repo.tryInsert(record)) return { kind: 'started', seed: await seedOf(now) };
    const existing = await repo.get(workspaceId, key);
    if (!existing) return begin(workspaceId, key, request, now);
    if (existing.fingerprint !== fingerprint) {
      throw new AppError('idempotency_mismatch', 'This Idempotency-Key was already used with a different request.');
    }
    if (existing.status === null || existing.status === RELEASED || existing.body === null) {
      if (await repo.takeOver(workspaceId, key, new Date(now.getTime() - PENDING_TIMEOUT_MS))) {
        return { kind: 'started', seed: await seedOf(existing.createdAt) };
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
    release: (workspaceId: string, key: string) => repo.release(workspaceId, key),
  };
}

export type IdempotencyService = ReturnType<typeof createIdempotencyService>;
