import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OncelyError } from '@oncely/core';
import { afterAll, describe, expect, it } from 'vitest';
import { loadApp } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'oncely-load-app-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A module with this source, in a directory of its own. */
function moduleFile(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

async function refusal(path: string): Promise<string> {
  const error = await loadApp(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(OncelyError.is(error, 'CONFIG_INVALID'), String(error)).toBe(true);
  return (error as Error).message;
}

describe('loadApp: a module that is not an app says what it exports instead', () => {
  it('names the exports of a module without default or app', async () => {
    const path = moduleFile('named.mjs', 'export const handler = () => {}; export const group = "ledger";');
    expect(await refusal(path)).toBe(
      `${path} must export an app made with defineApp() as its default export or as \`app\`; it exports handler (a function), group (a string)`,
    );
  });

  it('says what an app is when the default export is something else', async () => {
    const path = moduleFile('options.mjs', 'export default { group: "ledger" };');
    expect(await refusal(path)).toMatch(
      /; it exports default \(an object\) \(an app has a group and handlers: `export default defineApp\(\{ group \}\)\.handle\(…\)`\)$/,
    );
  });

  it('says that a module exports nothing', async () => {
    const path = moduleFile('empty.mjs', 'const notExported = 1;');
    expect(await refusal(path)).toMatch(/; it exports nothing \(is it the right file/);
  });
});
