/** drizzle queries for idempotency records, keyed by (workspace, Idempotency-Key). */
import { and, eq, isNull, lt, or } from 'drizzle-orm';
import { idempotencyRecords } from '../../db/schema.ts';
import type { Orm } from '../../platform/db/client.ts';

export type IdempotencyRecord = typeof idempotencyRecords.$inferSelect;

/** The status of a record whose request failed without a known outcome: a retry runs it again, as the same attempt. */
export const RELEASED = 0;

export function createIdempotencyRepository(orm: Orm) {
  const byKey = (workspaceId: string, key: string) =>
    and(eq(idempotencyRecords.workspaceId, workspaceId), eq(idempotencyRecords.key, key));

  return {
    /** Inserts a pending record; false when one with this key already exists. */
    async tryInsert(record: IdempotencyRecord): Promise<boolean> {
      const rows = await orm
        .insert(idempotencyRecords)
        .values(record)
        .onConflictDoNothing()
        .returning({ key: idempotencyRecords.key });
      return rows.length > 0;
    },
    async get(workspaceId: string, key: string): Promise<IdempotencyRecord | undefined> {
      const [row] = await orm.select().from(idempotencyRecords).where(byKey(workspaceId, key));
      return row;
    },
    async complete(
      workspaceId: string,
      key: string,
      response: Pick<IdempotencyRecord, 'status' | 'contentType' | 'location' | 'body'>,
    ): Promise<void> {
      await orm.update(idempotencyRecords).set(response).where(byKey(workspaceId, key));
    },
    /** Marks a pending record released (status 0): its request failed with an unknown outcome. */
    async release(workspaceId: string, key: string): Promise<void> {
      await orm
        .update(idempotencyRecords)
        .set({ status: RELEASED })
        .where(and(byKey(workspaceId, key), isNull(idempotencyRecords.status)));
    },
    /**
     * Makes a released record, or one pending since before `staleBefore`, pending again for a new attempt, keeping
     * its createdAt (the attempts' shared seed). False when another attempt took it first.
     */
    async takeOver(workspaceId: string, key: string, staleBefore: Date): Promise<boolean> {
      const rows = await orm
        .update(idempotencyRecords)
        .set({ status: null })
        .where(
          and(
            byKey(workspaceId, key),
            or(
              eq(idempotencyRecords.status, RELEASED),
              and(isNull(idempotencyRecords.status), lt(idempotencyRecords.createdAt, staleBefore)),
            ),
          ),
        )
        .returning({ key: idempotencyRecords.key });
      return rows.length > 0;
    },
    async remove(workspaceId: string, key: string): Promise<void> {
      await orm.delete(idempotencyRecords).where(byKey(workspaceId, key));
    },
    /** Deletes every expired record (served by the `expires_at` index). */
    async purgeExpired(now: Date): Promise<void> {
      await orm.delete(idempotencyRecords).where(lt(idempotencyRecords.expiresAt, now));
    },
  };
}

export type IdempotencyRepository = ReturnType<typeof createIdempotencyRepository>;
