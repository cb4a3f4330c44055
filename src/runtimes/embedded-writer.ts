/**
 * The click consumer's SQL on an embedded `file:` database (Node, Bun): a native libSQL connection of its own, each
 * statement prepared once and kept, each batch one `BEGIN IMMEDIATE` ... `COMMIT`. @libsql/client parses every
 * statement on every call; a consumer batch is a handful of statements, of shapes that recur, and parsing them
 * again cost about a third of storing a click (docs/perf-history.md). Same answers as the client
 * (`SqlRunner`), so the clicks repository cannot tell which one runs its SQL.
 */
import type { InStatement } from '@libsql/client';
import Database from 'libsql';
import type { SqlRow, SqlRunner } from '../modules/clicks/clicks.repository.ts';
import { WAL_AUTOCHECKPOINT_FRAMES } from './database.ts';
import { collectGarbage } from './heap.ts';

type Statement = ReturnType<InstanceType<typeof Database>['prepare']>;

// The consumer's statements have one shape per table whatever the batch's size (its rows are one JSON argument,
// clicks.repository.ts), so a handful are kept. The cache is bounded all the same: when multi-row statements had a
// shape per row count, hundreds of them, some of hundreds of KB of native memory, grew hop's RSS by about 1 MB/s
// under saturation, because a statement's native memory is freed only when V8 collects its wrapper and V8 does not
// see that memory. So the cache is bounded by the length of its SQL, and emptying it is followed by a full
// collection (a few ms on the click thread's small heap).
const MAX_CACHED_SQL_CHARS = 1_000_000;

// SQLite's page cache for this connection (its default is 2 MiB): every batch upserts rollup rows spread over the
// links it touches, and pages that fell out of a small cache are read again from the OS (a pread each). 16 MiB cut
// the consumer's system time per click by about a third (docs/benchmarks.md); it is allocated as pages are used.
const WRITER_CACHE_KIB = 16_384;

export interface EmbeddedWriter extends SqlRunner {
  close(): void;
}

export interface EmbeddedWriterOptions {
  /** How long a write waits for another connection's lock. */
  busyTimeoutMs: number;
  /**
   * Whether each commit waits for the disk (SQLite's `synchronous = full`, its default). Without (`normal`, the usual
   * setting in WAL mode) a commit survives the process dying, but the log is synced only at checkpoints, so a power
   * cut or a kernel crash may undo every commit since the last checkpoint (up to WAL_AUTOCHECKPOINT_FRAMES frames);
   * the file stays consistent. Worth it with the in-process queue, which holds up to a second of clicks in memory anyway; an
   * external queue acknowledges what was committed, so it keeps the wait.
   */
  syncEachCommit: boolean;
}

/** `path`: the database file of a `file:` URL. */
export function createEmbeddedWriter(path: string, options: EmbeddedWriterOptions): EmbeddedWriter {
  const db = new Database(path, { timeout: options.busyTimeoutMs });
  db.exec(`pragma wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_FRAMES}`);
  if (!options.syncEachCommit) db.exec('pragma synchronous = normal');
  db.exec(`pragma cache_size = -${WRITER_CACHE_KIB}`);
  const cache = new Map<string, Statement>();
  let cachedChars = 0;
  const prepared = (sql: string): Statement => {
    let statement = cache.get(sql);
    if (!statement) {
      if (cachedChars + sql.length > MAX_CACHED_SQL_CHARS && cache.size) {
        cache.clear();
        cachedChars = 0;
        collectGarbage();
      }
      statement = db.prepare(sql);
      cache.set(sql, statement);
      cachedChars += sql.length;
    }
    return statement;
  };
  const run = (input: InStatement) => {
    const { sql, args = [] } = typeof input === 'string' ? { sql: input, args: [] } : input;
    const statement = prepared(sql);
    if (statement.reader) return { rows: statement.all(args) as SqlRow[], rowsAffected: 0 };
    return { rows: [] as SqlRow[], rowsAffected: statement.run(args).changes };
  };
  return {
    async execute(statement) {
      return run(statement);
    },
    async batch(statements) {
      db.exec('begin immediate');
      try {
        const results = statements.map(run);
        db.exec('commit');
        return results;
      } catch (err) {
        if (db.inTransaction) db.exec('rollback');
        throw err;
      }
    },
    close: () => db.close(),
  };
}
