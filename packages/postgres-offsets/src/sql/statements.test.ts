import createKnex from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { appliedRangesSql } from './applied-ranges.js';
import { claimSql, recordInFlightSql } from './claim.js';
import { releaseSql } from './release.js';
import { renewSql } from './renew.js';
import {
  type BatchCommitParams,
  batchBeginSql,
  batchCommitMergedSql,
  batchCommitSql,
  batchCommitUnfencedSql,
  batchStartSql,
  batchStartUnfencedSql,
  boundNames as namesInOrder,
} from './run-batch.js';
import { inlined, literal, positional, type Statement, setLockTimeoutSql } from './statement.js';
import { heartbeatSql, leaveSql } from './workers.js';

// Rendering needs the pg dialect only; no connection is opened.
const knex = createKnex({ client: 'pg' });
afterAll(() => knex.destroy());

/** Names bound as `:name`: a colon not preceded by another (that one is a `::type` cast). */
function boundNames(text: string): string[] {
  return namesInOrder(text).sort();
}

/** What would go wrong when knex renders `text` with `params`; empty when nothing. */
function problems(text: string, params: Record<string, unknown>): string[] {
  const out: string[] = [];
  const names = boundNames(text);
  const keys = Object.keys(params).sort();
  if (names.join() !== keys.join()) out.push(`binds ${names.join(', ')} but the params are ${keys.join(', ')}`);
  // pg would read a literal '?' as one more placeholder.
  if (text.includes('?')) out.push("the text contains '?'");
  const native = knex.raw(text, params).toSQL().toNative();
  const placeholders = new Set([...native.sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
  if (placeholders.size !== native.bindings.length) {
    out.push(`${placeholders.size} placeholders for ${native.bindings.length} values`);
  }
  // A name knex left alone (no such param), or a cast it took for a binding (a param named like a type).
  if (/(?<!:):[A-Za-z_]/.test(native.sql)) out.push('a :name was left in the text');
  if (/:\$\d/.test(native.sql)) out.push('a ::type cast was read as a binding');
  return out;
}

const s = '"oncely"';
const fence = { group: 'g', topic: 't', partition: 0, epoch: '1', owner: 'w' };
const commit: BatchCommitParams = { ...fence, fetchedFrom: '0', next: '5', recordCount: 5, deadLetters: '[]' };
const { epoch: _epoch, owner: _owner, ...unfencedCommit } = commit;

/** A statement with sample values, type-checked against the params it declares. */
function sample<P extends object, R>(
  name: string,
  statement: Statement<P, R>,
  params: NoInfer<P>,
): [string, string, Record<string, unknown>] {
  return [name, statement, { ...params } as Record<string, unknown>];
}

const statements = [
  sample('claim', claimSql(s), {
    lockTimeout: '5000',
    group: 'g',
    topic: 't',
    partition: 0,
    initialOffset: '0',
    owner: 'w',
    leaseMs: 1,
    reclaim: false,
    force: false,
    actor: 'op@host',
    goneGraceMs: 6000,
  }),
  sample('recordInFlight', recordInFlightSql(s), { lockTimeout: '5000', from: '3', to: '5', deaths: 1, alone: 0, ...fence }),
  sample('release', releaseSql(s), { lockTimeout: '5000', ...fence }),
  sample('renew', renewSql(s), {
    lockTimeout: '5000',
    leaseMs: 1,
    groups: ['g'],
    topics: ['t'],
    partitions: [0],
    epochs: ['1'],
    owners: ['w'],
  }),
  sample('batchStart', batchStartSql(s), { lockTimeout: '5000', idleTimeout: '30000', ...fence, fetchedFrom: '0' }),
  sample('batchCommit', batchCommitSql(s), commit),
  sample('batchStartUnfenced', batchStartUnfencedSql(), { lockTimeout: '5000', idleTimeout: '30000' }),
  sample('batchCommitUnfenced', batchCommitUnfencedSql(s), unfencedCommit),
  sample('appliedRanges', appliedRangesSql(s), { group: 'g', topic: 't', partition: 0, from: '0', to: '9' }),
  sample('setLockTimeout', setLockTimeoutSql, { lockTimeout: '5000' }),
  sample('heartbeat', heartbeatSql(s), {
    lockTimeout: '5000',
    group: 'g',
    workerId: 'w',
    host: 'h',
    pid: 1,
    membership: 'elastic',
    target: null,
    held: 0,
    maxPartitions: null,
    weight: 1,
    sessionTimeoutMs: 15_000,
    starting: true,
    forgetMs: 300_000,
    goneGraceMs: null,
  }),
  sample('leave', leaveSql(s), { lockTimeout: '5000', group: 'g', workerId: 'w' }),
];

describe('hot-path statements', () => {
  it.each(statements)('%s binds exactly its params, each name once per use, casts left as casts', (_name, text, params) => {
    expect(problems(text, params)).toEqual([]);
  });

  it('the check catches a missing param, a stray one, a cast read as a binding and a literal ?', () => {
    expect(problems('select :a::int, :b', { a: 1 })).toEqual(['binds a, b but the params are a', 'a :name was left in the text']);
    expect(problems('select :a::int', { a: 1, b: 2 })).toEqual(['binds a but the params are a, b']);
    expect(problems('select :int::int', { int: 1 })).toEqual(['a ::type cast was read as a binding']);
    expect(problems('select :a where x ? :a', { a: 1 })).toContain("the text contains '?'");
  });

  it('a value used twice is written once and bound at each use', () => {
    const native = knex
      .raw(batchCommitSql(s), { ...commit })
      .toSQL()
      .toNative();
    // next: the new position, the highest committed, the log's to_offset.
    expect(native.bindings.filter((b) => b === '5')).toHaveLength(3);
  });

  it.each(statements)('%s compiled to the positional form is the text and the values knex would send', (_name, text, params) => {
    const native = knex.raw(text, params).toSQL().toNative();
    const compiled = positional(text);
    expect(compiled.text).toBe(native.sql);
    expect(compiled.names.map((n) => params[n])).toEqual(native.bindings);
  });
});

describe("the benchmark's unfenced statements (the price of the fence, pnpm bench scenario 8)", () => {
  const flat = (text: string) => text.replace(/\s+/g, ' ').trim();

  it('the commit is the fenced commit without the three fence predicates, nothing else', () => {
    const fenced = flat(batchCommitSql(s));
    const guard = ' and p.epoch = :epoch::bigint and p.next_offset = :fetchedFrom::bigint and p.owner = :owner';
    expect(fenced).toContain(guard);
    expect(fenced.replace(guard, '')).toBe(flat(batchCommitUnfencedSql(s)));
  });

  it("the start statement is the fenced one with the claim's lookup replaced by true, nothing else", () => {
    const fenced = flat(batchStartSql(s));
    const lookup = /exists \( select 1 from "oncely"\.partitions where [^)]*\) as current$/;
    expect(fenced).toMatch(lookup);
    expect(fenced.replace(lookup, 'true as current')).toBe(flat(batchStartUnfencedSql()));
  });
});

describe('the merged batch statements (simple queries, values inlined)', () => {
  const commit = batchCommitSql('"oncely"');
  const commitNames = namesInOrder(commit);

  it('quotes literals so that quotes and backslashes read back as written, and refuses a NUL', () => {
    expect(literal('plain')).toBe("'plain'");
    expect(literal("it's")).toBe("'it''s'");
    expect(literal('a\\b')).toBe(" E'a\\\\b'");
    expect(literal("'; drop table x; --")).toBe("'''; drop table x; --'");
    expect(() => literal('a\0b')).toThrow(/NUL/);
  });

  it('begins with the start statement and stores every value the commit reads, all inlined', () => {
    const begin = batchBeginSql(batchStartSql('"oncely"'), commitNames);
    expect(begin.startsWith('begin;')).toBe(true);
    expect(boundNames(begin)).toEqual([...new Set([...commitNames, 'lockTimeout', 'idleTimeout'])].sort());
    const params = Object.fromEntries(boundNames(begin).map((n) => [n, `v-${n}`]));
    const text = inlined(begin as Statement<Record<string, string>>).render(params);
    expect(text).not.toMatch(/(?<!:):[A-Za-z_]/);
    for (const n of commitNames) expect(text).toContain(`set_config('oncely.b_${n}', 'v-${n}', true)`);
    const { owner: _, ...withoutOwner } = params;
    expect(() => inlined(begin as Statement<Record<string, string>>).render(withoutOwner)).toThrow(/:owner/);
  });

  it('commits with no bound value left, checks the CAS before COMMIT, and has no ? for knex to renumber', () => {
    for (const merged of [batchCommitMergedSql('"oncely"'), batchCommitMergedSql('"oncely"', false)]) {
      expect(merged).not.toMatch(/(?<!:):[A-Za-z_]/);
      expect(merged).not.toContain('?');
      expect(merged.indexOf('do $oncely$')).toBeGreaterThan(merged.indexOf('update "oncely".partitions'));
      expect(merged.trimEnd().endsWith('commit')).toBe(true);
    }
    expect(batchCommitMergedSql('"oncely"')).toContain("p.owner = nullif(current_setting('oncely.b_owner', true), '')");
    expect(batchCommitMergedSql('"oncely"', false)).not.toContain('p.owner =');
    expect(namesInOrder(batchCommitUnfencedSql('"oncely"'))).not.toContain('epoch');
  });
});
