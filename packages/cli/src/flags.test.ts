import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '@oncely/core';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { applyEnvironment, envName, explainSource, flags, inFlagTerms, listFlags } from './flags.js';
import { buildProgram } from './main.js';

/** The flags that pick or confirm a change: no variable, on purpose. */
const ALWAYS_TYPED = [
  '--to-offset',
  '--to-earliest',
  '--to-latest',
  '--to-datetime',
  '--by-duration',
  '--shift-by',
  '--to-checkpoint',
  '--to-time-of-commit',
  '--execute',
  '--force',
  '--all',
  '--yes',
];

const docs = readFileSync(resolve(import.meta.dirname, '../../../docs/cli.md'), 'utf8');
const tableRows = docs.split('\n').filter((l) => l.startsWith('| `') || l.startsWith('| —'));

describe('flags and their variables', () => {
  const all = listFlags(buildProgram(() => {}));

  it('every flag of every command has an ONCELY_* variable, except the ones that pick or confirm a change', () => {
    expect(all.length).toBeGreaterThan(50);
    const missing = all.filter((f) => !f.hidden && f.env === undefined && !ALWAYS_TYPED.includes(f.flag));
    expect(missing).toEqual([]);
    for (const f of all) if (f.env !== undefined) expect(f.env).toBe(envName(f.flag));
    expect(all.filter((f) => ALWAYS_TYPED.includes(f.flag)).every((f) => f.env === undefined)).toBe(true);
  });

  it('docs/cli.md has one table row naming each flag with its variable (or none)', () => {
    const problems: string[] = [];
    for (const f of all.filter((x) => !x.hidden || x.env !== undefined)) {
      const row = tableRows.find((r) => new RegExp(`\`${f.flag}[ \`]`).test(r.split('|')[1]!));
      if (!row) problems.push(`${f.flag} (${f.command}): no row`);
      else if (f.env !== undefined && !row.includes(`\`${f.env}\``)) problems.push(`${f.flag}: row lacks ${f.env}`);
      else if (f.env === undefined && !/\|\s*—\s*\|/.test(row)) problems.push(`${f.flag}: row should say it has no variable`);
    }
    expect(problems).toEqual([]);
    expect(tableRows.some((r) => r.includes('`ONCELY_KAFKA_SASL_PASSWORD`'))).toBe(true);
  });

  it('derives variable names from flags', () => {
    expect(envName('--batch-max-records')).toBe('ONCELY_BATCH_MAX_RECORDS');
    expect(envName('--no-progress')).toBe('ONCELY_PROGRESS');
  });
});

describe('applyEnvironment', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  function parse(argv: string[]) {
    const cmd = flags(new Command('t').exitOverride(), [
      { flags: '--size <n>', description: 'size' },
      { flags: '--url <url>', description: 'url', fallbackEnv: ['OLD_URL'] },
      { flags: '--json', description: 'json' },
      { flags: '--no-migrate', description: 'no migrate' },
      { flags: '--topic <t>', description: 'topics', repeatable: true },
      { flags: '--mode <m>', description: 'mode', choices: ['a', 'b'], default: 'a' },
      { flags: '--group <g>', description: 'group', required: true },
      { flags: '--yes', description: 'confirm', env: false },
    ]);
    cmd.parse(argv, { from: 'user' });
    applyEnvironment(cmd);
    return { cmd, opts: cmd.opts() };
  }

  it('fills options from variables; the command line wins; empty means unset', () => {
    process.env.ONCELY_SIZE = '7';
    process.env.ONCELY_GROUP = 'g';
    process.env.ONCELY_TOPIC = 'a b:0,1';
    process.env.ONCELY_JSON = 'no';
    process.env.ONCELY_MIGRATE = 'false';
    process.env.ONCELY_MODE = 'b';
    process.env.ONCELY_YES = 'true';
    process.env.OLD_URL = 'postgres://old';
    expect(parse([]).opts).toEqual({
      size: '7',
      group: 'g',
      topic: ['a', 'b:0,1'],
      json: false,
      migrate: false,
      mode: 'b',
      url: 'postgres://old',
    });
    expect(parse(['--size', '3', '--topic', 'c', '--json', '--mode', 'a']).opts).toMatchObject({
      size: '3',
      topic: ['c'],
      json: true,
      mode: 'a',
    });
    process.env.ONCELY_URL = 'postgres://new';
    expect(parse([]).opts.url).toBe('postgres://new');
    process.env.ONCELY_URL = '';
    expect(parse([]).opts.url).toBe('postgres://old');
  });

  it('refuses bad variables naming them and the flag; a required flag names its variable', () => {
    process.env.ONCELY_GROUP = 'g';
    process.env.ONCELY_JSON = 'maybe';
    expect(() => parse([])).toThrow('ONCELY_JSON (--json) must be true or false');
    delete process.env.ONCELY_JSON;
    process.env.ONCELY_MODE = 'c';
    expect(() => parse([])).toThrow('ONCELY_MODE (--mode) must be one of a, b; got c.');
    delete process.env.ONCELY_MODE;
    delete process.env.ONCELY_GROUP;
    expect(() => parse([])).toThrow('--group is required (or set ONCELY_GROUP).');
  });

  it('says where a bad value came from, and speaks in flags for core option names', () => {
    process.env.ONCELY_GROUP = 'g';
    process.env.ONCELY_SIZE = '0';
    const { cmd } = parse([]);
    expect(explainSource('--size must be positive', cmd)).toBe('--size (from ONCELY_SIZE) must be positive');
    expect(explainSource('--url is wrong', cmd)).toBe('--url is wrong');
    const names = { batchMaxRecords: '--batch-max-records', retryMaxDelayMs: '--retry-max-delay', schema: '--schema' };
    expect(() =>
      inFlagTerms(names, () => {
        throw new ConfigError('Worker option batchMaxRecords must be below retryMaxDelayMs');
      }),
    ).toThrow(/^--batch-max-records must be below --retry-max-delay$/);
    expect(() =>
      inFlagTerms(names, () => {
        throw new ConfigError('schema must match the pattern; the schema is wrong');
      }),
    ).toThrow(/^--schema must match the pattern; the schema is wrong$/);
    expect(() =>
      inFlagTerms(names, () => {
        throw new Error('Worker option batchMaxRecords is fine');
      }),
    ).toThrow(/^Worker option batchMaxRecords is fine$/); // only configuration errors are renamed
  });
});
