/**
 * The TypeScript code of the documentation, type-checked the way a reader would use it.
 *
 * Every ```ts (or ```typescript) block of a markdown file is compiled as its own module, with
 * `strict` and the decorator options the README asks for, against the packages a reader installs.
 * Two markers, for blocks that are not whole programs on purpose:
 *
 * - `// fragment` as the first line of a block (any text may follow: say what it assumes) marks
 *   an excerpt. It is type-checked only when a hidden prelude gives it what it assumes;
 *   otherwise it is skipped.
 * - A prelude is an HTML comment right before the block, invisible on a rendered page:
 *   `<!-- ts-prelude` … `-->`. Its lines (imports, `declare const app: …`) are compiled in front of
 *   the block, so a short excerpt is still checked against the real types.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export interface DocBlock {
  /** The markdown file, relative to the repository root. */
  file: string;
  /** 1-based line of the block's first code line in the markdown file. */
  line: number;
  code: string;
  prelude: string | undefined;
  fragment: boolean;
}

const FENCE = /^```(ts|typescript)\s*$/;
const PRELUDE = /<!--\s*ts-prelude\s*\n([\s\S]*?)-->\s*$/;

/** Every ts block of these markdown files (paths relative to `root`). */
export function extractBlocks(root: string, files: string[]): DocBlock[] {
  const blocks: DocBlock[] = [];
  for (const file of files) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!FENCE.test(lines[i]!)) continue;
      const start = i + 1;
      let end = start;
      while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
      if (end === lines.length) throw new Error(`${file}:${i + 1}: the ts block is never closed`);
      const before = lines.slice(0, i).join('\n');
      const prelude = PRELUDE.exec(before)?.[1];
      const code = lines.slice(start, end).join('\n');
      blocks.push({ file, line: start + 1, code, prelude, fragment: /^\s*\/\/\s*fragment\b/.test(lines[start] ?? '') });
      i = end;
    }
  }
  return blocks;
}

/** The blocks that get compiled: whole ones, and fragments with a prelude. */
export function checkedBlocks(blocks: DocBlock[]): DocBlock[] {
  return blocks.filter((b) => !b.fragment || b.prelude !== undefined);
}

/**
 * Type-checks the blocks as modules placed in `dir` (so imports resolve from the node_modules
 * around it) and returns one line per diagnostic, pointing into the markdown file.
 */
export function typeCheckBlocks(
  blocks: DocBlock[],
  dir: string,
  root: string,
  resolution: 'NodeNext' | 'Bundler' = 'NodeNext',
): string[] {
  const options: ts.CompilerOptions = {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    module: resolution === 'NodeNext' ? ts.ModuleKind.NodeNext : ts.ModuleKind.ESNext,
    moduleResolution: resolution === 'NodeNext' ? ts.ModuleResolutionKind.NodeNext : ts.ModuleResolutionKind.Bundler,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    types: ['node'],
    noEmit: true,
    skipLibCheck: true,
  };
  const virtual = new Map<string, { block: DocBlock; text: string; offset: number }>();
  blocks.forEach((block, n) => {
    const name = join(dir, `${block.file.replace(/[^A-Za-z0-9]/g, '_')}_${block.line}_${n}.ts`);
    const prelude = block.prelude ? `${block.prelude.trimEnd()}\n` : '';
    // `export {}` keeps each block a module: blocks never see each other's declarations.
    virtual.set(name, { block, text: `${prelude}${block.code}\nexport {};\n`, offset: prelude.split('\n').length - 1 });
  });
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (f) => virtual.has(f) || fileExists.call(host, f);
  host.readFile = (f) => virtual.get(f)?.text ?? readFile.call(host, f);
  host.getSourceFile = (f, lang, ...rest) => {
    const v = virtual.get(f);
    return v ? ts.createSourceFile(f, v.text, lang) : getSourceFile.call(host, f, lang, ...rest);
  };
  host.getCurrentDirectory = () => dir;
  const program = ts.createProgram([...virtual.keys()], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const v = d.file ? virtual.get(d.file.fileName) : undefined;
    if (!d.file || d.start === undefined) return `error TS${d.code}: ${message}`;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    if (!v) return `${relative(root, d.file.fileName)}:${line + 1}:${character + 1}: error TS${d.code}: ${message}`;
    const where =
      line < v.offset
        ? `${v.block.file}:${v.block.line} (prelude line ${line + 1})`
        : `${v.block.file}:${v.block.line + line - v.offset}`;
    return `${where}:${character + 1}: error TS${d.code}: ${message}`;
  });
}

/** The markdown files whose code is checked: the README, docs/ and every package's README. */
export function documentationFiles(root: string): string[] {
  const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md'));
  const packages = readdirSync(join(root, 'packages')).filter((p) => existsSync(join(root, 'packages', p, 'README.md')));
  return ['README.md', ...docs.sort().map((f) => `docs/${f}`), ...packages.sort().map((p) => `packages/${p}/README.md`)];
}
