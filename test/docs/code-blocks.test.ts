/**
 * The documentation's code compiles as written: every ```ts block of README.md, docs/*.md and the
 * packages' READMEs is type-checked as its own module, with `strict`, against the built packages.
 *
 * Markers for blocks that are excerpts on purpose (parsed by test/support/doc-blocks.ts):
 * - `// fragment: <what it assumes>` as the block's first line says, on the page, that it is an
 *   excerpt. A bare fragment is not compiled.
 * - `<!-- ts-prelude` … `-->` right before the block (invisible on the rendered page) holds what
 *   the excerpt assumes (imports, `declare const app: App;`); it is compiled in front of the block,
 *   so the excerpt is still checked against the real types. Prefer this to a bare fragment.
 */

import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkedBlocks, documentationFiles, extractBlocks, typeCheckBlocks } from '../support/doc-blocks.js';
import { requireBuild } from '../support/fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');

describe('the code of the documentation', () => {
  const files = documentationFiles(ROOT);
  const blocks = extractBlocks(ROOT, files);

  // Checked against the packages' declarations as they are built now.
  beforeAll(requireBuild);

  it('finds the README examples', () => {
    expect(checkedBlocks(blocks).filter((b) => b.file === 'README.md').length).toBeGreaterThanOrEqual(3);
  });

  it('type-checks every block that is not a bare fragment', () => {
    const diagnostics = typeCheckBlocks(checkedBlocks(blocks), resolve(ROOT, 'test/docs/blocks'), ROOT);
    expect(diagnostics).toEqual([]);
  }, 120_000);
});
