import { OncelyError } from '@oncely/core';
import { describe, expect, it } from 'vitest';
import { identifierParts, quoteIdentifier, validateSchema } from './identifiers.js';

describe('identifiers: one rule for names in SQL text', () => {
  it('quotes plain and qualified table names and keeps their case', () => {
    expect(quoteIdentifier('copyRows', 'table', 'page_views')).toBe('"page_views"');
    expect(quoteIdentifier('insertRows', 'table', 'app.Page_Views$2')).toBe('"app"."Page_Views$2"');
    expect(quoteIdentifier('insertRows', 'column', `_${'x'.repeat(62)}`)).toBe(`"_${'x'.repeat(62)}"`);
  });

  it.each([
    ['table', 'a.b.c'],
    ['table', ''],
    ['table', 'x"; drop table t; --'],
    ['table', '1abc'],
    ['column', 'a.b'],
    ['column', 'x'.repeat(64)],
    ['column', 'naïve'],
    ['column', 'a-b'],
    ['column', '$a'],
  ] as const)('refuses %s %j with a ConfigError naming the caller', (kind, name) => {
    let error: unknown;
    try {
      identifierParts('copyRows', kind, name);
    } catch (e) {
      error = e;
    }
    expect(OncelyError.is(error, 'CONFIG_INVALID')).toBe(true);
    expect(String((error as Error).message)).toContain(`copyRows: ${kind} ${JSON.stringify(name)}`);
  });

  it('refuses a name that is not a string', () => {
    expect(() => quoteIdentifier('insertRows', 'column', 42)).toThrow(/insertRows: column 42 is not a plain identifier/);
  });

  it('keeps oncely’s schema lower-case', () => {
    expect(validateSchema('oncely_2')).toBe('oncely_2');
    expect(() => validateSchema('Oncely')).toThrow(/schema must match/);
    expect(() => validateSchema(undefined)).toThrow(/schema must match/);
  });
});
