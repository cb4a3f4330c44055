/**
 * A shard's reader: the reads that may lag (redirect lookups, statistics) go to one of the shard's read replicas,
 * chosen round robin, and to the primary when that replica misses its deadline, fails, or has its breaker open.
 * Writes, and every read that must see them, use the primary itself (ShardSet.shards), never this.
 */
import type { Client, InStatement, ResultSet, TransactionMode } from '@libsql/client';
// eslint-disable-next-line no-restricted-imports -- drizzle's HTTP driver, not src/http/ (the rule's `**/http`), as in client.ts
import { drizzle } from 'drizzle-orm/libsql/http';
import * as schema from '../../db/schema.ts';
import { CircuitOpenError, createCircuitBreaker, type CircuitBreaker } from '../resilience.ts';
import type { Database } from './client.ts';

/** Why a read passed a replica by: its breaker was open, it missed its deadline, or it failed otherwise. */
export type ReplicaSkip = 'open' | 'timeout' | 'error';

export interface ReplicaReaderOptions {
  /** The replica's deadline (HOP_DATABASE_REPLICA_TIMEOUT_MS): a failure this late is counted as `timeout`. */
  timeoutMs: number;
  /** Consecutive failures that open a replica's breaker. */
  failureThreshold?: number;
  /** How long an open breaker keeps reads off the replica before one probes it. */
  cooldownMs?: number;
  /** A read passed replica `replica` (its index among the shard's replicas) by. */
  onSkip?: (replica: number, reason: ReplicaSkip) => void;
  /** A read was answered, by a replica or (after skips, or with none healthy) by the primary. */
  onServed?: (by: 'replica' | 'primary') => void;
  now?: () => number;
}

const READ_ONLY_SQL = /^\s*(select|with)\b/i;
const sqlOf = (stmt: InStatement) => (typeof stmt === 'string' ? stmt : stmt.sql);
const isRead = (stmts: InStatement[]) => stmts.every((s) => READ_ONLY_SQL.test(sqlOf(s)));

export interface ReplicaReader extends Database {
  /** Each replica's breaker state, in order (for tests and diagnostics). */
  readonly breakers: readonly CircuitBreaker[];
}

/**
 * The reader over a shard's primary and its replicas. A read tries the next replica whose breaker lets it through
 * (an open one is passed by at no cost), and after one failed try goes to the primary: a read costs at most one
 * replica deadline more than on the primary alone. Anything that is not a plain read goes to the primary.
 */
export function createReplicaReader(primary: Database, replicas: readonly Database[], options: ReplicaReaderOptions): ReplicaReader {
  const { timeoutMs, onSkip, onServed, now = Date.now } = options;
  const breakers = replicas.map(() =>
    createCircuitBreaker({ failureThreshold: options.failureThreshold ?? 3, cooldownMs: options.cooldownMs ?? 5000, now }),
  );
  let next = 0;

  async function read<T>(run: (client: Client) => Promise<T>): Promise<T> {
    for (let tried = 0; tried < replicas.length; tried++) {
      const index = next++ % replicas.length;
      if (next >= Number.MAX_SAFE_INTEGER) next = 0;
      const started = now();
      try {
        const answer = await breakers[index]!.run(() => run(replicas[index]!.client));
        onServed?.('replica');
        return answer;
      } catch (err) {
        if (err instanceof CircuitOpenError) {
          onSkip?.(index, 'open');
          continue;
        }
        onSkip?.(index, now() - started >= timeoutMs - 1 ? 'timeout' : 'error');
        break;
      }
    }
    const answer = await run(primary.client);
    onServed?.('primary');
    return answer;
  }

  const client = new Proxy(primary.client, {
    get(target, prop) {
      if (prop === 'execute') {
        return (...args: Parameters<Client['execute']>) => {
          const stmt = typeof args[0] === 'string' ? args[0] : (args[0] as InStatement);
          const call = (c: Client) => (c.execute as (...a: unknown[]) => Promise<ResultSet>)(...args);
          return isRead([stmt]) ? read(call) : call(target);
        };
      }
      if (prop === 'batch') {
        return (stmts: InStatement[], mode?: TransactionMode) =>
          isRead(stmts) ? read((c) => c.batch(stmts, mode)) : target.batch(stmts, mode);
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    orm: drizzle(client, { schema }),
    client,
    breakers,
    ping: (ms) => primary.ping(ms),
    // The primary and the replicas are closed by their owner (closeShards), not through a reader.
    close: () => undefined,
  };
}
