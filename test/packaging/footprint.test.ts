/**
 * What a worker process loads besides what it needs: every module stays in memory for the life of
 * the process, and its objects are part of what each full collection marks.
 *
 * - Node 24 loads its bundled HTTP client (undici, behind fetch and WebSocket: ~750 KB of source,
 *   about 12 MB of resident memory once compiled) as soon as node:http is imported as an ES
 *   module, even when no server is started.
 * - @platformatic/kafka (with the JSON-schema compiler its options use: ~50 MB of resident memory
 *   in a bare node) is loaded only by the platformatic reader, when it connects.
 * - prom-client (and the @opentelemetry/api it imports) is loaded by `oncely run` only for
 *   --metrics-port.
 *
 * Each entry point is imported from the built dist/ in a fresh node, which then reports the native
 * modules it loaded and the packages it resolved (module.registerHooks sees both import and require).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { requireBuild } from '../support/fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/**
 * The native modules and the resolved module URLs matching `pattern` that importing `entry` (a
 * file under packages/) loaded.
 */
async function loadedBy(entry: string, pattern: RegExp): Promise<string[]> {
  const url = new URL(`file://${resolve(ROOT, 'packages', entry)}`).href;
  const script = `import { registerHooks } from 'node:module';
const resolved = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); resolved.push(r.url); return r; } });
await import(${JSON.stringify(url)});
console.log(JSON.stringify([...process.moduleLoadList, ...resolved].filter((m) => ${pattern}.test(m))));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '[]') as string[];
}

describe('what importing a package loads', () => {
  it('the probe sees undici when node:http is imported as an ES module, and a package imported', async () => {
    requireBuild();
    // The premise of the checks below: without it they would pass for the wrong reason.
    const script = `import { createServer } from 'node:http'; void createServer;
console.log(JSON.stringify(process.moduleLoadList.filter((m) => /undici/.test(m))));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    expect(JSON.parse(stdout.trim())).not.toEqual([]);
    // And a package the entry imports is seen by the resolve hook (kafkajs, which core imports).
    expect(await loadedBy('core/dist/index.js', /\/kafkajs\//)).not.toEqual([]);
  });

  it.each(['core/dist/index.js', 'postgres-offsets/dist/index.js', 'cli/dist/main.js', 'cli/dist/index.js'])(
    '%s loads no HTTP client (undici)',
    async (entry) => {
      requireBuild();
      expect(await loadedBy(entry, /undici/)).toEqual([]);
    },
  );

  it.each(['core/dist/index.js', 'cli/dist/main.js'])(
    '%s loads no @platformatic/kafka (the platformatic reader loads it when it connects)',
    async (entry) => {
      requireBuild();
      expect(await loadedBy(entry, /@platformatic[+/]kafka/)).toEqual([]);
    },
  );

  it('cli/dist/main.js loads no prom-client (oncely run loads it for --metrics-port)', async () => {
    requireBuild();
    expect(await loadedBy('cli/dist/main.js', /\/prom-client\/|@opentelemetry/)).toEqual([]);
  });
});
