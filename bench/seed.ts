/**
 * Seeds a fresh hop database for the redirect benchmark: migrations, one workspace, and `count` links
 * `s00001`.. pointing at `https://example.com/page/N` on the default domain. Rows go in through drizzle in
 * batched multi-row inserts (one transaction), because 10,000 single-row service calls would dominate the run.
 */
import { loadConfig } from '../src/config.ts';
import { links, type LinkRow } from '../src/db/schema.ts';
import { linkDefaults } from '../src/modules/links/links.service.ts';
import { newId } from '../src/platform/crypto.ts';
import { migrateDatabase, openDatabase } from '../src/runtimes/database.ts';
import { compose } from '../src/composition/root.ts';

export const slugOf = (n: number) => `s${String(n).padStart(5, '0')}`;
export const targetOf = (n: number) => `https://example.com/page/${n}`;

// 19 columns per row: 500 rows stay well below SQLite's bound-parameter limit.
const ROWS_PER_INSERT = 500;

export async function seedDatabase(databaseUrl: string, count: number): Promise<{ workspaceId: string; domain: string }> {
  const config = loadConfig({ HOP_DATABASE_URL: databaseUrl, HOP_LOG_LEVEL: 'silent' });
  const db = await openDatabase(config);
  try {
    await migrateDatabase(db);
    const now = new Date();
    const workspace = await compose(config, { db }).services.workspaces.createWorkspace({ name: 'bench' }, now);

    // The defaults links.service.ts gives a link created with only slug and url.
    const row = (n: number): LinkRow => ({
      ...linkDefaults(),
      id: newId('lnk'),
      workspaceId: workspace.id,
      domain: config.defaultDomain,
      slug: slugOf(n),
      url: targetOf(n),
      createdAt: now,
      updatedAt: now,
    });

    const inserts = [];
    for (let first = 1; first <= count; first += ROWS_PER_INSERT) {
      const rows: LinkRow[] = [];
      for (let n = first; n < first + ROWS_PER_INSERT && n <= count; n++) rows.push(row(n));
      inserts.push(db.orm.insert(links).values(rows));
    }
    const [head, ...tail] = inserts;
    if (head) await db.orm.batch([head, ...tail]);

    const seeded = await db.client.execute('select count(*) as n from links');
    if (Number(seeded.rows[0]!.n) !== count) throw new Error(`seeded ${String(seeded.rows[0]!.n)} links, expected ${count}`);
    return { workspaceId: workspace.id, domain: config.defaultDomain };
  } finally {
    db.close();
  }
}
