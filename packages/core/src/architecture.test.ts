import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layer order of docs/architecture.md: a file may import its own folder and folders of a lower
 * rank, never one of its own rank or higher. kafkajs/ is the adapter: besides the root index only
 * observe/ (the Kafka offset mirror) may use it, and no file outside it imports the kafkajs package.
 * Test files may import anything in the package.
 */
const RANK: Record<string, number> = {
  '.': 0, // errors.ts, logger.ts, time.ts
  reader: 1,
  codec: 2,
  store: 2,
  kafkajs: 2,
  // The second adapter shares the first one's wire decoders, leader cache and fetch lanes.
  platformatic: 2.5,
  policy: 3,
  membership: 3,
  app: 4,
  runtime: 5,
  observe: 6,
  testing: 6,
  index: 7,
};
const KAFKAJS_USERS = new Set(['kafkajs', 'platformatic', 'observe', 'index']);
const PLATFORMATIC_USERS = new Set(['platformatic', 'index']);
/** npm packages only the kafkajs adapter may import. */
const ADAPTER_PACKAGES = /^(kafkajs|kafkajs-snappy|lz4-napi|fzstd)(\/|$)/;
/** The npm package only the platformatic adapter may import (and only lazily or as types: it is an optional peer). */
const PLATFORMATIC_PACKAGE = /^@platformatic\/kafka(\/|$)/;

const root = import.meta.dirname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** The folder of a file under src ('.' for the root files, 'index' for the root index). */
function folderOf(file: string): string {
  const rel = relative(root, file).split(sep);
  if (rel.length === 1) return rel[0] === 'index.ts' ? 'index' : '.';
  return rel[0]!;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?(?:from\s*)?['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

function violations(): string[] {
  const out: string[] = [];
  for (const file of sources(root)) {
    const from = folderOf(file);
    const name = relative(root, file);
    if (RANK[from] === undefined) out.push(`${name}: folder ${from}/ has no place in the layer order`);
    for (const spec of importsOf(file)) {
      if (ADAPTER_PACKAGES.test(spec)) {
        if (from !== 'kafkajs') out.push(`${name} imports ${spec}: only kafkajs/ may`);
        continue;
      }
      if (PLATFORMATIC_PACKAGE.test(spec)) {
        if (from !== 'platformatic') out.push(`${name} imports ${spec}: only platformatic/ may`);
        continue;
      }
      if (!spec.startsWith('.')) continue;
      const to = folderOf(join(file, '..', spec));
      if (to === from) continue;
      if (to === 'kafkajs' && !KAFKAJS_USERS.has(from))
        out.push(`${name} imports ${spec}: only observe/, platformatic/ and index.ts use the adapter`);
      else if (to === 'platformatic' && !PLATFORMATIC_USERS.has(from))
        out.push(`${name} imports ${spec}: only index.ts uses the platformatic adapter`);
      else if (!((RANK[to] ?? 99) < (RANK[from] ?? -1))) out.push(`${name} imports ${spec}: ${from}/ may not import ${to}/`);
    }
  }
  return out;
}

describe('architecture', () => {
  it('imports point down the layer order, and only kafkajs/ imports kafkajs', () => {
    expect(violations()).toEqual([]);
  });

  it('@platformatic/kafka, an optional peer, is imported as types only: the entry loads without it', () => {
    const valueImports = sources(root).filter((file) =>
      /^\s*(?:import|export)\s+(?!type\b)[^'"]*from\s*['"]@platformatic\/kafka['"]/m.test(readFileSync(file, 'utf8')),
    );
    expect(valueImports.map((f) => relative(root, f))).toEqual([]);
    expect(importsOf(join(root, 'platformatic', 'reader.ts'))).toContain('@platformatic/kafka');
  });

  it('the check sees the imports it guards (it can fail)', () => {
    expect(importsOf(join(root, 'kafkajs', 'reader.ts'))).toContain('../reader/types.js');
    expect(importsOf(join(root, 'observe', 'kafka-offset-mirror.ts'))).toContain('../kafkajs/group-offsets.js');
    expect(importsOf(join(root, 'kafkajs', 'group-offsets.ts'))).toContain('kafkajs');
  });
});
