/**
 * The benchmark-only `unsafeUnfencedCommitsForBenchmarks` option (bench scenario 8 prices the fence
 * with it): it must really drop the fence, or the benchmark measures nothing, and a default store
 * on the same rows must stay fenced.
 */
import { FencedError } from '@oncely/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, pgPool } from '../support/fixtures.js';
import { claimInput, newStore, partitionRow, rejection } from './support.js';

const schema = freshSchema('unfenced');
const pool = pgPool();
const fenced = newStore(schema);
const unfenced = newStore(schema, { unsafeUnfencedCommitsForBenchmarks: true });

beforeAll(async () => {
  await fenced.migrate();
});

describe('unsafeUnfencedCommitsForBenchmarks', () => {
  it('commits a stale claim (epoch and position ignored), which the default store fences', async () => {
    const input = claimInput();
    const stale = await fenced.claim(input);
    await fenced.claim({ ...input, workerId: 'worker-b', force: true }); // epoch 2: `stale` is fenced

    expect(
      await rejection(fenced.runBatch(stale, { fetchedFrom: 0n, nextOffset: 5n, recordCount: 5 }, async () => 0)),
    ).toBeInstanceOf(FencedError);
    await unfenced.runBatch(stale, { fetchedFrom: 3n, nextOffset: 7n, recordCount: 4 }, async () => 0);
    expect(await partitionRow(pool, schema, stale)).toMatchObject({ next_offset: '7', epoch: '2', owner: 'worker-b' });
  });

  it('is off by default and must be a boolean', () => {
    expect(fenced.options.unsafeUnfencedCommitsForBenchmarks).toBe(false);
    expect(() => newStore(schema, { unsafeUnfencedCommitsForBenchmarks: 'yes' as unknown as boolean })).toThrow(
      /must be a boolean/,
    );
  });
});
