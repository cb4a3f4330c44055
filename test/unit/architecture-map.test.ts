// docs/architecture.md's map of src/ is checked against the tree: every path it names exists, every directory of
// src/ is named, and a directory whose files are listed one by one lists all of them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');

/** The paths the map names: the first word of each line between the markers that starts with src/. */
export function mapPaths(markdown: string): string[] {
  const start = markdown.indexOf('<!-- src-map:start -->');
  const end = markdown.indexOf('<!-- src-map:end -->');
  if (start === -1 || end <= start) throw new Error('docs/architecture.md has no src-map markers');
  return markdown
    .slice(start, end)
    .split('\n')
    .map((line) => line.split(/\s+/)[0]!)
    .filter((word) => word.startsWith('src/'));
}

function walk(dir: string, out: { files: string[]; dirs: string[] }) {
  for (const name of readdirSync(join(root, dir))) {
    const path = `${dir}/${name}`;
    if (statSync(join(root, path)).isDirectory()) {
      out.dirs.push(`${path}/`);
      walk(path, out);
    } else out.files.push(path);
  }
  return out;
}

describe('the map of src/ in docs/architecture.md', () => {
  const listed = mapPaths(doc);
  const tree = walk('src', { files: [], dirs: [] });

  it('names only paths that exist', () => {
    const missing = listed.filter((p) => !(p.endsWith('/') ? tree.dirs.includes(p) : tree.files.includes(p)));
    expect(missing).toEqual([]);
  });

  it('names every directory of src/', () => {
    expect(tree.dirs.filter((d) => !listed.includes(d))).toEqual([]);
  });

  it('lists every file of a directory whose files it lists one by one', () => {
    const byFile = new Set(listed.filter((p) => !p.endsWith('/')).map((p) => p.slice(0, p.lastIndexOf('/') + 1)));
    const unlisted = tree.files.filter((f) => {
      const dir = f.slice(0, f.lastIndexOf('/') + 1);
      return dir !== 'src/' && byFile.has(dir) && !listed.includes(f);
    });
    expect(unlisted).toEqual([]);
  });

  it('names every file at the top of src/', () => {
    const top = tree.files.filter((f) => relative('src', f).indexOf('/') === -1);
    expect(top.filter((f) => !listed.includes(f))).toEqual([]);
  });

  it('is read from the markers, so a map without them fails', () => {
    expect(() => mapPaths('# no map')).toThrow(/src-map markers/);
    expect(mapPaths('<!-- src-map:start -->\nsrc/a.ts  x\n  and more\nsrc/b/  y\n<!-- src-map:end -->')).toEqual(['src/a.ts', 'src/b/']);
  });
});
