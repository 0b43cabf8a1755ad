/**
 * docs/cli.md against the commands as they are registered: the flags table names, for each flag,
 * exactly the commands that have it (a flag added to a command, or taken away, shows up here), the
 * overview names every command and no other, and every flag the page mentions or types in an
 * `oncely …` example exists (on that command, in an example).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildProgram } from '@oncely/cli';
import { describe, expect, it } from 'vitest';

type Command = ReturnType<typeof buildProgram>;

const doc = readFileSync(resolve(import.meta.dirname, '../../docs/cli.md'), 'utf8');

interface Leaf {
  /** As typed: `offsets reset`. */
  path: string;
  /** Long names of its options, hidden ones apart. */
  shown: Map<string, string>;
  hidden: Set<string>;
}

/** Every command that runs (not `offsets`, `dlq`: they only group others), with its options. */
function leaves(): Leaf[] {
  const out: Leaf[] = [];
  const walk = (cmd: Command, path: string[]) => {
    if (path.length > 0 && cmd.commands.length === 0) {
      const shown = new Map<string, string>();
      const hidden = new Set<string>();
      for (const o of cmd.options) {
        if ((o as { hidden?: boolean }).hidden) hidden.add(o.long!);
        else shown.set(o.long!, o.flags);
      }
      out.push({ path: path.join(' '), shown, hidden });
    }
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
  };
  const program = buildProgram(() => {});
  walk(program, []);
  return out;
}

/** The rows of the table under "Flags and environment variables": flag cell and commands cell. */
function tableRows(): Array<{ line: string; flags: string; commands: string }> {
  const start = doc.indexOf('\n| Flag ');
  expect(start, 'the flags table').toBeGreaterThan(0);
  const end = doc.indexOf('\n\n', start);
  const lines = doc
    .slice(start + 1, end)
    .split('\n')
    .slice(2);
  return lines.map((line) => {
    const cells = line.split('|').map((c) => c.trim());
    return { line, flags: cells[1]!, commands: cells[3]! };
  });
}

/**
 * The commands a Commands cell names: `all`, `all but \`ui\``, or a list in which a group
 * (`offsets`, `dlq`) stands for each of its commands.
 */
function namedCommands(cell: string, all: string[]): Set<string> {
  const but = /^all but (.+)$/.exec(cell);
  if (cell === 'all') return new Set(all);
  const names = (but ? but[1]! : cell)
    .split(',')
    .map((n) => n.replace(/`/g, '').trim())
    .filter(Boolean);
  const expanded = new Set<string>();
  for (const name of names) {
    const matching = all.filter((c) => c === name || c.startsWith(`${name} `));
    expect(matching, `"${name}" in the Commands cell "${cell}" is not a command`).not.toEqual([]);
    for (const c of matching) expanded.add(c);
  }
  return but ? new Set(all.filter((c) => !expanded.has(c))) : expanded;
}

/** `--foo` from `--foo <bar>`, `--foo=1`, `--foo bar`. */
const longNames = (text: string) => [...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]);

/** Flags the page mentions that are not oncely's: Node's, and the placeholders of the variable rule. */
const NOT_ONCELY = new Set([
  '--max-semi-space-size',
  '--min-semi-space-size',
  '--max-old-space-size',
  '--max-heap-size',
  '--foo-bar',
  '--foo',
  '--no-foo',
]);
/** Commander's own. */
const BUILT_IN = new Set(['--help', '--version']);

describe('docs/cli.md and the flags of the commands', () => {
  const commands = leaves();
  const all = commands.map((c) => c.path);
  const rows = tableRows();

  it('finds the commands and the table', () => {
    expect(all).toContain('run');
    expect(all).toContain('offsets reset');
    expect(all).toContain('dlq purge');
    expect(rows.length).toBeGreaterThan(50);
  });

  it('names, for each flag, exactly the commands that have it', () => {
    const problems: string[] = [];
    const documented = new Map<string, Set<string>>();
    for (const row of rows) {
      const named = namedCommands(row.commands, all);
      for (const name of longNames(row.flags)) {
        if (documented.has(name)) problems.push(`${name}: in two rows`);
        documented.set(name, named);
        for (const c of named) {
          const cmd = commands.find((x) => x.path === c)!;
          if (!cmd.shown.has(name) && !cmd.hidden.has(name))
            problems.push(`${name}: the table says ${c}, which has no such flag`);
        }
        // A flag that takes a value is written with one (`--batch-max-records <n>`), a switch without.
        const form = new RegExp(`\`(${name}(?: <[^>]+>)?)\``).exec(row.flags)?.[1];
        const real = commands.map((x) => x.shown.get(name)).find((f) => f !== undefined);
        if (form !== undefined && real !== undefined && form.includes('<') !== /[<[]/.test(real)) {
          problems.push(`${name}: the table writes \`${form}\`, the command has \`${real}\``);
        }
      }
    }
    for (const cmd of commands) {
      for (const name of cmd.shown.keys()) {
        if (!documented.get(name)?.has(cmd.path)) problems.push(`${name}: ${cmd.path} has it, the table does not say so`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('mentions only flags that exist', () => {
    const exist = new Set(commands.flatMap((c) => [...c.shown.keys(), ...c.hidden]));
    const unknown = longNames(doc.replace(/```[\s\S]*?```/g, '')).filter(
      (f) => !exist.has(f) && !NOT_ONCELY.has(f) && !BUILT_IN.has(f),
    );
    expect([...new Set(unknown)]).toEqual([]);
  });

  it('lists every command in its overview, and types in its examples only flags of the command typed', () => {
    const blocks = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    const problems: string[] = [];
    const typed = new Set<string>();
    for (const block of blocks) {
      for (const line of block.split('\n')) {
        const at = line.search(/(?:^|\s)oncely\s/);
        if (at < 0) continue;
        const words = line
          .slice(at)
          .replace(/\s#.*$/, '')
          .trim()
          .split(/\s+/)
          .slice(1);
        // `oncely offsets reset|checkpoint|history …` names three commands.
        let paths = [''];
        for (const word of words) {
          const next = paths.flatMap((p) => word.split('|').map((w) => (p ? `${p} ${w}` : w)));
          if (!next.every((p) => all.some((c) => c === p || c.startsWith(`${p} `)))) break;
          paths = next;
        }
        const flagsTyped = longNames(words.join(' ')).filter((f) => !BUILT_IN.has(f));
        if (paths[0] === '') {
          // `oncely --version`, `oncely <command> --help`; anything else names no command.
          const first = words[0] ?? '';
          if (!BUILT_IN.has(first) && first !== '-V' && first !== '<command>') problems.push(`${line.trim()}: no such command`);
          continue;
        }
        for (const p of paths) {
          const cmd = commands.find((c) => c.path === p);
          if (!cmd) {
            for (const c of all.filter((x) => x.startsWith(`${p} `))) typed.add(c);
            continue;
          }
          typed.add(p);
          for (const f of flagsTyped) {
            if (!cmd.shown.has(f) && !cmd.hidden.has(f)) problems.push(`${line.trim()}: ${p} has no ${f}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
    expect(all.filter((c) => !typed.has(c))).toEqual([]);
  });
});
