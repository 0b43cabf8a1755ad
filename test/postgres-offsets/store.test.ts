import { AbortedError, type Claim, type DeadLetter, FencedError, StateError, StoreUnavailableError } from '@oncely/core';
import { LOCK_NOT_AVAILABLE, PostgresStore } from '@oncely/postgres-offsets';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, pgPool } from '../support/fixtures.js';
import { freePort } from '../support/ports.js';
import { claimInput, logRows, newStore, partitionRow, rejection } from './support.js';

const schema = freshSchema('store');
const pool = pgPool();
const store = newStore(schema);
/** A second store on the same schema: another worker process. */
const other = newStore(schema);

beforeAll(async () => {
  await store.migrate();
  // An application table in the test schema (dropped with it), written by the handlers.
  await pool.query(`create table ${schema}.app_rows (id text primary key, note text)`);
});

async function appRows(prefix: string): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(`select id from ${schema}.app_rows where id like $1 order by id`, [
    `${prefix}%`,
  ]);
  return rows.map((r) => r.id);
}

/** A handler that writes one application row per id through the batch transaction. */
const write =
  (...ids: string[]) =>
  async (tx: import('knex').Knex.Transaction) => {
    for (const id of ids) await tx.insert({ id }).into(`${schema}.app_rows`);
    return ids.length;
  };

describe('claim', () => {
  it('starts a new partition at initialOffset with epoch 1 and sets owner and lease', async () => {
    const input = claimInput({ initialOffset: 42n, partition: 3 });
    const claim = await store.claim(input);
    expect(claim).toEqual({
      group: input.group,
      topic: input.topic,
      partition: 3,
      workerId: 'worker-a',
      epoch: 1n,
      nextOffset: 42n,
      highestCommitted: null,
      suspect: false,
    });
    const row = await partitionRow(pool, schema, claim);
    expect(row).toMatchObject({ next_offset: '42', epoch: '1', owner: 'worker-a', lease_ms: 30_000, lease_in_future: true });
  });

  it('bumps the epoch on every later claim and keeps the stored position', async () => {
    const input = claimInput({ initialOffset: 7n });
    await store.claim(input);
    const second = await other.claim({ ...input, workerId: 'worker-b', initialOffset: 1000n, force: true });
    expect(second).toMatchObject({ epoch: 2n, nextOffset: 7n, workerId: 'worker-b' });
    const third = await store.claim({ ...input, force: true });
    expect(third.epoch).toBe(3n);
    expect(await partitionRow(pool, schema, third)).toMatchObject({ epoch: '3', owner: 'worker-a', next_offset: '7' });
  });
});

describe('runBatch', () => {
  it('commits the handler writes, the new position and an offset_log row together', async () => {
    const claim = await store.claim(claimInput());
    const result = await store.runBatch(
      claim,
      { fetchedFrom: 0n, nextOffset: 3n, recordCount: 3 },
      write('ok-1', 'ok-2', 'ok-3'),
    );
    expect(result).toBe(3);
    expect(await appRows('ok-')).toEqual(['ok-1', 'ok-2', 'ok-3']);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '3', max_committed_offset: '3', epoch: '1' });
    expect(await logRows(pool, schema, claim)).toEqual([
      { from_offset: '0', to_offset: '3', record_count: 3, epoch: '1', worker_id: 'worker-a' },
    ]);
    // The same claim keeps committing from the new position (offsets need not be contiguous).
    await store.runBatch(claim, { fetchedFrom: 3n, nextOffset: 10n, recordCount: 2 }, write('ok-4'));
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '10' });
    expect((await logRows(pool, schema, claim)).map((r) => r.to_offset)).toEqual(['3', '10']);
  });

  it('rolls everything back when the handler throws and rethrows the very same error', async () => {
    const claim = await store.claim(claimInput());
    const boom = new Error('handler failed');
    const e = await rejection(
      store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 2n, recordCount: 2 }, async (tx) => {
        await write('thrown-1')(tx);
        throw boom;
      }),
    );
    expect(e).toBe(boom);
    expect(await appRows('thrown-')).toEqual([]);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '0', max_committed_offset: null });
    expect(await logRows(pool, schema, claim)).toEqual([]);
    // Non-Error values are passed through untouched too.
    const thrownString = await rejection(
      store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 2n, recordCount: 2 }, async () => {
        throw 'plain string';
      }),
    );
    expect(thrownString).toBe('plain string');
  });

  it('passes a database error raised by the handler through unchanged', async () => {
    const claim = await store.claim(claimInput());
    await pool.query(`insert into ${schema}.app_rows (id) values ('dup-1')`);
    const e = await rejection(store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, write('dup-1')));
    expect(e).toMatchObject({ code: '23505' }); // the pg error itself, for the failure policy to judge
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '0' });
  });

  it('fences a claim whose epoch was bumped by another worker, before running the handler', async () => {
    const input = claimInput();
    const stale = await store.claim(input);
    await other.claim({ ...input, workerId: 'worker-b', force: true });
    let ran = false;
    const e = await rejection(
      store.runBatch(stale, { fetchedFrom: 0n, nextOffset: 5n, recordCount: 5 }, async (tx) => {
        ran = true;
        return write('stale-1')(tx);
      }),
    );
    expect(e).toBeInstanceOf(FencedError);
    expect(e).toMatchObject({ code: 'FENCED', topic: input.topic, partition: 0, epoch: 1n, retriable: false });
    expect(ran).toBe(false);
    expect(await appRows('stale-')).toEqual([]);
    expect(await partitionRow(pool, schema, stale)).toMatchObject({ next_offset: '0', epoch: '2', owner: 'worker-b' });
    expect(await logRows(pool, schema, stale)).toEqual([]);
  });

  it('fences by epoch even when the newer claim has the same worker id (a restarted process)', async () => {
    const input = claimInput();
    const zombie = await store.claim(input);
    const restarted = await other.claim(input); // same workerId 'worker-a', new epoch
    const e = await rejection(store.runBatch(zombie, { fetchedFrom: 0n, nextOffset: 2n, recordCount: 2 }, write('zombie-1')));
    expect(e).toBeInstanceOf(FencedError);
    // Also when the takeover happens while the zombie's handler runs: only the final CAS can tell.
    const late = await rejection(
      store.runBatch(restarted, { fetchedFrom: 0n, nextOffset: 2n, recordCount: 2 }, async (tx) => {
        await write('zombie-2')(tx);
        await other.claim(input);
      }),
    );
    expect(late).toBeInstanceOf(FencedError);
    expect(await appRows('zombie-')).toEqual([]);
    expect(await store.renew([zombie, restarted], 1000)).toEqual([zombie, restarted]);
    expect(await partitionRow(pool, schema, zombie)).toMatchObject({ next_offset: '0', epoch: '3', owner: 'worker-a' });
  });

  it('fences a claim taken over while its handler runs: the final CAS rolls the writes back', async () => {
    const input = claimInput();
    const claim = await store.claim(input);
    const e = await rejection(
      store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 4n, recordCount: 4 }, async (tx) => {
        await write('mid-1', 'mid-2')(tx);
        // Another worker claims the partition on its own connection while this batch is in flight;
        // it does not wait for the batch (no row lock is held across the handler).
        await other.claim({ ...input, workerId: 'worker-b', force: true });
      }),
    );
    expect(e).toBeInstanceOf(FencedError);
    expect(await appRows('mid-')).toEqual([]);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '0', epoch: '2', owner: 'worker-b' });
    expect(await logRows(pool, schema, claim)).toEqual([]);
  });

  it('gives the connection of a batch fenced at its commit back to the pool out of the failed transaction', async () => {
    // One connection: the next batch runs on the session the fenced commit left.
    const single = newStore(schema, { poolMax: 1 });
    const input = claimInput();
    const claim = await single.claim(input);
    const e = await rejection(
      single.runBatch(claim, { fetchedFrom: 0n, nextOffset: 2n, recordCount: 2 }, async (tx) => {
        await write('pool-1')(tx);
        await other.claim({ ...input, workerId: 'worker-b', force: true });
      }),
    );
    expect(e).toBeInstanceOf(FencedError);
    const again = await single.claim({ ...input, force: true });
    await single.runBatch(again, { fetchedFrom: 0n, nextOffset: 2n, recordCount: 2 }, write('pool-2'));
    expect(await appRows('pool-')).toEqual(['pool-2']);
    expect(await partitionRow(pool, schema, again)).toMatchObject({ next_offset: '2', epoch: '3', owner: 'worker-a' });
    const { rows } = await single.knex.raw<{ rows: { open: string | null }[] }>(
      "select current_setting('oncely.batch_open', true) as open",
    );
    expect(rows[0]?.open ?? '').toBe('');
  });

  it('fences a batch whose fetchedFrom is not the stored position', async () => {
    const claim = await store.claim(claimInput({ initialOffset: 10n }));
    const e = await rejection(store.runBatch(claim, { fetchedFrom: 5n, nextOffset: 12n, recordCount: 2 }, write('pos-1')));
    expect(e).toBeInstanceOf(FencedError);
    expect(await appRows('pos-')).toEqual([]);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '10' });
  });

  it('fences a retry of a batch that already committed, so an unknown commit outcome is safe to retry', async () => {
    const claim = await store.claim(claimInput());
    const range = { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 };
    await store.runBatch(claim, range, write('retry-1'));
    const e = await rejection(store.runBatch(claim, range, write('retry-2')));
    expect(e).toBeInstanceOf(FencedError);
    expect(await appRows('retry-')).toEqual(['retry-1']);
  });

  it('tracks the highest committed position across a rewind (for isReplay)', async () => {
    const input = claimInput();
    const first = await store.claim(input);
    await store.runBatch(first, { fetchedFrom: 0n, nextOffset: 10n, recordCount: 10 }, async () => {});
    // An operator rewind (the admin issue will do this): position back to 2, epoch bumped.
    await pool.query(
      `update ${schema}.partitions set next_offset = 2, epoch = epoch + 1 where group_id = $1 and topic = $2 and partition = 0`,
      [input.group, input.topic],
    );
    const again = await store.claim(input);
    expect(again).toMatchObject({ epoch: 3n, nextOffset: 2n, highestCommitted: 10n });
    await store.runBatch(again, { fetchedFrom: 2n, nextOffset: 5n, recordCount: 3 }, async () => {});
    expect(await partitionRow(pool, schema, again)).toMatchObject({ next_offset: '5', max_committed_offset: '10' });
    await store.runBatch(again, { fetchedFrom: 5n, nextOffset: 12n, recordCount: 7 }, async () => {});
    expect(await partitionRow(pool, schema, again)).toMatchObject({ next_offset: '12', max_committed_offset: '12' });
    expect((await store.claim(input)).highestCommitted).toBe(12n);
  });

  it('sets lock_timeout with SET LOCAL inside the transaction only', async () => {
    const tuned = newStore(schema, { lockTimeoutMs: 1234, poolMax: 1 });
    const claim = await tuned.claim(claimInput());
    const inside = await tuned.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async (tx) => {
      const { rows } = await tx.raw('show lock_timeout');
      return rows[0].lock_timeout as string;
    });
    expect(inside).toBe('1234ms');
    // Same (single) pooled connection afterwards: the setting ended with the transaction.
    const { rows } = await tuned.knex.raw('show lock_timeout');
    expect(rows[0].lock_timeout).not.toBe('1234ms');
  });

  it('turns a lock wait longer than lockTimeoutMs into a retriable StoreUnavailableError and commits nothing', async () => {
    const impatient = newStore(schema, { lockTimeoutMs: 100 });
    const input = claimInput();
    const claim = await impatient.claim(input);
    const blocker = await pool.connect();
    try {
      await blocker.query('begin');
      await blocker.query(`select 1 from ${schema}.partitions where group_id = $1 and topic = $2 and partition = 0 for update`, [
        input.group,
        input.topic,
      ]);
      const e = await rejection(impatient.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, write('lock-1')));
      expect(e).toBeInstanceOf(StoreUnavailableError);
      expect(e).toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
      expect((e as Error).cause).toMatchObject({ code: LOCK_NOT_AVAILABLE });
      expect((e as Error).message).toMatch(/lockTimeoutMs \(100 ms\)/);
      const claimError = await rejection(impatient.claim(input));
      expect(claimError).toBeInstanceOf(StoreUnavailableError);
    } finally {
      await blocker.query('rollback');
      blocker.release();
    }
    expect(await appRows('lock-')).toEqual([]);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '0', epoch: '1' });
  });

  it('writes dead letters in the same transaction as the offset', async () => {
    const input = claimInput();
    const claim = await store.claim(input);
    const failedAt = new Date('2024-05-01T10:00:00.000Z');
    const deadLetters: DeadLetter[] = [
      {
        record: {
          offset: 1n,
          timestamp: Date.parse('2024-05-01T09:59:00.000Z'),
          key: Buffer.from([0, 1, 2, 255]),
          value: Buffer.from('{"bad":json'),
          headers: [
            ['trace', Buffer.from('abc')],
            ['trace', null],
          ],
        },
        error: { name: 'CodecError', message: 'Unexpected token \u0000 in JSON', code: 'CODEC_FAILED', stack: 'at x' },
        attempts: 1,
        firstFailedAt: failedAt,
        lastFailedAt: failedAt,
      },
      {
        record: { offset: 9_007_199_254_740_993n, timestamp: -1, key: null, value: null, headers: [] },
        error: { name: 'Error', message: 'tombstone' },
        attempts: 5,
        firstFailedAt: failedAt,
        lastFailedAt: new Date('2024-05-01T10:05:00.000Z'),
      },
    ];
    await store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 3n, recordCount: 3 }, write('dl-ok'), { deadLetters });
    const { rows } = await pool.query(
      `select topic, partition, "offset"::text, key, value, headers, record_timestamp, error_name, error_message, error_code,
              error_stack, attempts, first_failed_at, last_failed_at, epoch::text, worker_id, replayed_at
         from ${schema}.dead_letters where group_id = $1 order by "offset"`,
      [input.group],
    );
    expect(rows).toEqual([
      {
        topic: input.topic,
        partition: 0,
        offset: '1',
        key: Buffer.from([0, 1, 2, 255]),
        value: Buffer.from('{"bad":json'),
        headers: [
          { name: 'trace', value: Buffer.from('abc').toString('base64') },
          { name: 'trace', value: null },
        ],
        record_timestamp: new Date('2024-05-01T09:59:00.000Z'),
        error_name: 'CodecError',
        error_message: 'Unexpected token \uFFFD in JSON',
        error_code: 'CODEC_FAILED',
        error_stack: 'at x',
        attempts: 1,
        first_failed_at: failedAt,
        last_failed_at: failedAt,
        epoch: '1',
        worker_id: 'worker-a',
        replayed_at: null,
      },
      expect.objectContaining({
        offset: '9007199254740993',
        key: null,
        value: null,
        headers: [],
        record_timestamp: null,
        attempts: 5,
      }),
    ]);
    expect(await appRows('dl-')).toEqual(['dl-ok']);
  });

  it('writes no dead letters when the batch is fenced or the handler throws', async () => {
    const input = claimInput();
    const claim = await store.claim(input);
    const deadLetters: DeadLetter[] = [
      {
        record: { offset: 0n, timestamp: 0, key: null, value: null, headers: [] },
        error: { name: 'Error', message: 'x' },
        attempts: 1,
        firstFailedAt: new Date(),
        lastFailedAt: new Date(),
      },
    ];
    const range = { fetchedFrom: 0n, nextOffset: 1n, recordCount: 0 };
    await rejection(
      store.runBatch(
        claim,
        range,
        async () => {
          throw new Error('no');
        },
        { deadLetters },
      ),
    );
    await other.claim({ ...input, workerId: 'worker-b', force: true });
    expect(await rejection(store.runBatch(claim, range, async () => {}, { deadLetters }))).toBeInstanceOf(FencedError);
    const { rows } = await pool.query(`select count(*)::int as n from ${schema}.dead_letters where group_id = $1`, [input.group]);
    expect(rows[0].n).toBe(0);
  });

  it('rolls back when the signal aborts during the handler, and does not start when already aborted', async () => {
    const claim = await store.claim(claimInput());
    const controller = new AbortController();
    const e = await rejection(
      store.runBatch(
        claim,
        { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 },
        async (tx) => {
          await write('abort-1')(tx);
          controller.abort();
          await new Promise((resolve) => setTimeout(resolve, 50));
        },
        { signal: controller.signal },
      ),
    );
    expect(e).toBeInstanceOf(AbortedError);
    expect(await appRows('abort-')).toEqual([]);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ next_offset: '0' });
    let ran = false;
    const early = await rejection(
      store.runBatch(
        claim,
        { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 },
        async () => {
          ran = true;
        },
        { signal: controller.signal },
      ),
    );
    expect(early).toBeInstanceOf(AbortedError);
    expect(ran).toBe(false);
  });
});

describe('renew and release', () => {
  it('renews current claims in one call and returns the ones that were lost', async () => {
    const group = claimInput().group;
    const topic = claimInput().topic;
    const a0 = await store.claim(claimInput({ group, topic, partition: 0, leaseMs: 1000 }));
    const a1 = await store.claim(claimInput({ group, topic, partition: 1, leaseMs: 1000 }));
    await other.claim(claimInput({ group, topic, partition: 1, workerId: 'worker-b', force: true }));
    const lost = await store.renew([a0, a1], 60_000);
    expect(lost).toEqual([a1]);
    expect(await partitionRow(pool, schema, a0)).toMatchObject({ lease_ms: 60_000, owner: 'worker-a' });
    const { rows } = await pool.query(
      `select lease_expires_at > now() + interval '30 seconds' as extended from ${schema}.partitions
        where group_id = $1 and topic = $2 and partition = 0`,
      [group, topic],
    );
    expect(rows[0].extended).toBe(true);
    // The other worker's claim is untouched by the stale renewal.
    expect(await partitionRow(pool, schema, a1)).toMatchObject({ owner: 'worker-b', lease_ms: 30_000, epoch: '2' });
    expect(await store.renew([], 1000)).toEqual([]);
  });

  it('releases a current claim, which then can no longer commit', async () => {
    const claim = await store.claim(claimInput());
    expect(await store.release(claim)).toBe(true);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ owner: null, lease_expires_at: null, epoch: '1' });
    expect(
      await rejection(store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, async () => {})),
    ).toBeInstanceOf(FencedError);
    expect(await store.renew([claim], 1000)).toEqual([claim]);
  });

  it('does not release a successor claim with a stale one', async () => {
    const input = claimInput();
    const stale = await store.claim(input);
    await other.claim({ ...input, workerId: 'worker-b', force: true });
    expect(await store.release(stale)).toBe(false); // matched nothing: not reported as released
    expect(await partitionRow(pool, schema, stale)).toMatchObject({ owner: 'worker-b', lease_in_future: true });
  });
});

describe('names are values', () => {
  it('stores group and topic names with quotes, backslashes and SQL in them exactly', async () => {
    const group = `g'; drop table ${schema}.partitions; --`;
    const topic = `t"q'uo\\te{d},x`;
    const input = claimInput({ group, topic, partition: 2 });
    const claim = await store.claim(input);
    await store.runBatch(claim, { fetchedFrom: 0n, nextOffset: 1n, recordCount: 1 }, write('names-1'));
    expect(await store.renew([claim], 5000)).toEqual([]);
    const positions = await store.getPositions(group);
    expect(positions).toHaveLength(1);
    expect(positions[0]).toMatchObject({ group, topic, partition: 2, nextOffset: 1n, epoch: 1n, owner: 'worker-a' });
    await store.release(claim);
    expect(await partitionRow(pool, schema, claim)).toMatchObject({ owner: null, next_offset: '1' });
    const log = await store.offsetLog({ group, topic });
    expect(log).toMatchObject([
      { group, topic, partition: 2, fromOffset: 0n, toOffset: 1n, recordCount: 1, workerId: 'worker-a' },
    ]);
  });
});

describe('reads and lifecycle', () => {
  it('lists positions of a group and its offset log, newest first', async () => {
    const group = claimInput().group;
    const c0 = await store.claim(claimInput({ group, topic: 'alpha', partition: 0, initialOffset: 5n }));
    await store.claim(claimInput({ group, topic: 'alpha', partition: 1 }));
    await store.claim(claimInput({ group, topic: 'beta', partition: 0 }));
    await store.runBatch(c0, { fetchedFrom: 5n, nextOffset: 8n, recordCount: 3 }, async () => {});
    await store.runBatch(c0, { fetchedFrom: 8n, nextOffset: 9n, recordCount: 1 }, async () => {});
    const all = await store.getPositions(group);
    expect(all.map((p) => `${p.topic}/${p.partition}@${p.nextOffset}`)).toEqual(['alpha/0@9', 'alpha/1@0', 'beta/0@0']);
    expect(all[0]).toMatchObject({ highestCommitted: 9n, leaseExpired: false });
    expect((await store.getPositions(group, 'beta')).map((p) => p.topic)).toEqual(['beta']);
    const log = await store.offsetLog({ group, topic: 'alpha', partition: 0 });
    expect(log.map((l) => [l.fromOffset, l.toOffset])).toEqual([
      [8n, 9n],
      [5n, 8n],
    ]);
    expect(await store.offsetLog({ group, before: new Date(0) })).toEqual([]);
  });

  it('refuses calls after close, and close is idempotent', async () => {
    const s = newStore(schema);
    await s.close();
    await s.close();
    await expect(s.claim(claimInput())).rejects.toBeInstanceOf(StateError);
    await expect(s.runBatch({} as Claim, { fetchedFrom: 0n, nextOffset: 0n, recordCount: 0 }, async () => {})).rejects.toThrow(
      /state 'closed'/,
    );
  });
});

describe('connection failures', () => {
  it('maps an unreachable database to a retriable StoreUnavailableError without leaking the password', async () => {
    const port = await freePort(); // nothing listens on it
    const s = new PostgresStore({ connectionString: `postgres://app:s3cr3t-pw@127.0.0.1:${port}/nowhere`, schema });
    try {
      expect(s.options.target).toBe(`postgres://app:***@127.0.0.1:${port}/nowhere`);
      const e = await rejection(s.claim(claimInput()));
      expect(e).toBeInstanceOf(StoreUnavailableError);
      expect(e).toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
      expect((e as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
      expect((e as Error).message).toContain(`127.0.0.1:${port}`);
      expect((e as Error).message).not.toContain('s3cr3t');
      expect(JSON.stringify(s.options)).not.toContain('s3cr3t');
    } finally {
      await s.close();
    }
  });
});
