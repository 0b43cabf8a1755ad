/**
 * The documentation's code compiles as written: every ts block of README.md, docs/*.md and the
 * packages' READMEs, type-checked with `strict` against the built packages. Blocks that are
 * excerpts on purpose say so with a marker, described in test/support/doc-blocks.ts.
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
