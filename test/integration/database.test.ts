// The embedded database under lock contention: a busy database answers 503 and changes nothing, and the writes
// that follow are committed for real (seen by another connection and after a restart), not held in a wedged one.
import Database from 'libsql';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, expectProblem, type TestApp } from '../helpers/app.ts';

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ HOP_DATABASE_BUSY_TIMEOUT_MS: '100' }, { redirectLookup: 'embedded' });
});
afterEach(() => t.close());

const create = (slug: string) =>
  t.request('/v1/links', { method: 'POST', json: { url: `https://example.com/${slug}`, slug } });

function committedSlugs(path: string): string[] {
  const other = new Database(path, { readonly: true });
  try {
    return (other.prepare('select slug from links order by slug').all() as Array<{ slug: string }>).map((r) => r.slug);
  } finally {
    other.close();
  }
}

describe('a database locked by another process', () => {
  it('answers 503 problem+json with Retry-After while the lock is held, and stores nothing', async () => {
    const locker = new Database(t.dbPath);
    locker.exec('begin exclusive');
    try {
      const res = await create('during');
      const problem = await expectProblem(res, 503, 'unavailable');
      expect(problem.detail).toMatch(/busy/);
      expect(res.headers.get('retry-after')).toBe('1');
    } finally {
      locker.exec('rollback');
      locker.close();
    }
    expect(committedSlugs(t.dbPath)).toEqual([]);
  });

  it('commits every write after the lock is released: other connections see them, and so does a restart', async () => {
    const locker = new Database(t.dbPath);
    locker.exec('begin exclusive');
    await expectProblem(await create('during'), 503);
    await expectProblem(await create('during-too'), 503);
    locker.exec('rollback');
    locker.close();

    expect((await create('after-1')).status).toBe(201);
    expect((await create('after-2')).status).toBe(201);
    const follow = await t.app.request('/after-2');
    expect(follow.status).toBe(302);
    expect(committedSlugs(t.dbPath)).toEqual(['after-1', 'after-2']);
  });
});
