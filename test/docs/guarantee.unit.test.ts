/**
 * What the README promises about a handler's writes, checked on the page itself: only writes
 * through ctx.tx are exactly-once; every other effect, writes through another connection
 * included, is at-least-once. A reader who skips to "Handlers" must find it there.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  expect(start, `README section "${title}"`).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end).replace(/\s+/g, ' ');
}

describe('README: which effects are exactly-once', () => {
  it('the guarantee and the handlers section both say that writes through any other connection are at-least-once', () => {
    for (const title of ['The guarantee', 'Handlers']) {
      const text = section(title);
      expect(text).toMatch(/at-least-once/);
      expect(text).toMatch(/any other (database )?connection/);
    }
    expect(section('Handlers')).toMatch(/Only writes through `ctx\.tx`.* are exactly-once/);
  });
});
