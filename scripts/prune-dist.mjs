// Deletes build outputs whose source is gone (tsc -b never does): after a file moves, its old
// dist/*.js would otherwise still be importable locally and be packed into the tarballs.
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const OUTPUT = /\.(d\.ts\.map|d\.ts|js\.map|js)$/;

/** Removes the directories under `dir` that pruning left empty; true when `dir` itself is empty. */
function removeEmpty(dir) {
  let empty = true;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && removeEmpty(join(dir, entry.name))) rmdirSync(join(dir, entry.name));
    else empty = false;
  }
  return empty;
}

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

for (const pkg of readdirSync(join(root, 'packages'))) {
  const dist = join(root, 'packages', pkg, 'dist');
  const src = join(root, 'packages', pkg, 'src');
  if (!existsSync(dist) || !existsSync(src)) continue;
  for (const file of files(dist)) {
    const base = relative(dist, file).replace(OUTPUT, '');
    if (base === relative(dist, file)) continue;
    if (!existsSync(join(src, `${base}.ts`)) && !existsSync(join(src, `${base}.tsx`))) {
      rmSync(file);
      console.log(`prune-dist: removed ${relative(root, file)} (its source is gone)`);
    }
  }
  removeEmpty(dist);
}
