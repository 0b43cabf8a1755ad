/**
 * The benchmark's records, a pure function of their sequence number so that every scenario (and
 * the COPY ceiling, which never touches Kafka) sees the same data and every check knows the answer.
 *
 * Key: one of 1,000 accounts (`acct-0042`, 9 bytes). Value: `{"seq":…,"account":…,"cents":…,"pad":"…"}`
 * padded to exactly `valueBytes` bytes.
 */

export const ACCOUNTS = 1000;
export const KEY_BYTES = 9;

/** The account (and Kafka key) of record `seq`. */
export function accountOf(seq: number): string {
  return `acct-${String(seq % ACCOUNTS).padStart(4, '0')}`;
}

/** The amount of record `seq`, 1..9973 cents. */
export function centsOf(seq: number): number {
  return ((seq * 7919) % 9973) + 1;
}

/** The JSON value of record `seq`, exactly `valueBytes` long (longer only if valueBytes is below the unpadded size). */
export function recordValue(seq: number, valueBytes: number): string {
  const head = `{"seq":${seq},"account":"${accountOf(seq)}","cents":${centsOf(seq)},"pad":"`;
  const pad = Math.max(0, valueBytes - head.length - 2);
  return `${head}${'x'.repeat(pad)}"}`;
}

/** Sum of the cents of records 0..records-1. */
export function totalCents(records: number): bigint {
  let sum = 0n;
  let chunk = 0;
  for (let seq = 0; seq < records; seq++) {
    chunk += centsOf(seq);
    if (chunk > 2 ** 50) {
      sum += BigInt(chunk);
      chunk = 0;
    }
  }
  return sum + BigInt(chunk);
}

/** The value size a record really has (the unpadded JSON may exceed a tiny valueBytes). */
export function valueBytesOf(seq: number, valueBytes: number): number {
  return Buffer.byteLength(recordValue(seq, valueBytes));
}

/**
 * What the ledger handler writes for a batch: per account, the sum of its records' cents and their
 * count, as the three arrays of its `unnest` upsert (accounts, cents, records).
 */
export function ledgerColumns(values: Iterable<{ account: string; cents: number }>): [string[], number[], number[]] {
  const sums = new Map<string, { cents: number; records: number }>();
  for (const v of values) {
    const s = sums.get(v.account);
    if (s) {
      s.cents += v.cents;
      s.records++;
    } else sums.set(v.account, { cents: v.cents, records: 1 });
  }
  const accounts = [...sums.keys()];
  return [accounts, accounts.map((a) => sums.get(a)!.cents), accounts.map((a) => sums.get(a)!.records)];
}
