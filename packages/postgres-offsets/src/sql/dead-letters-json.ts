import { type DeadLetter, pgText } from '@oncely/core';

// Postgres text and jsonb cannot hold NUL, and json_to_recordset rejects a lone surrogate (22P02):
// an error message, stack or header name with one must not make the commit (and so the partition)
// fail forever. The record's key and value go as base64: their bytes are kept as they were.
function text(s: unknown): string | null {
  return s === undefined || s === null ? null : pgText(String(s));
}

function iso(d: Date): string | null {
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/**
 * The dead letters as the JSON array batchCommitSql unpacks with json_to_recordset: bytes base64,
 * offsets as strings (exact beyond 2^53), headers as [{name, value}] in wire order.
 */
export function deadLettersJson(deadLetters: readonly DeadLetter[] | undefined): string {
  if (deadLetters === undefined || deadLetters.length === 0) return '[]';
  return JSON.stringify(
    deadLetters.map((d) => ({
      offset: d.record.offset.toString(),
      key: d.record.key?.toString('base64') ?? null,
      value: d.record.value?.toString('base64') ?? null,
      headers: d.record.headers.map(([name, value]) => ({ name: text(name), value: value?.toString('base64') ?? null })),
      // Kafka uses -1 for "no timestamp".
      record_timestamp: d.record.timestamp >= 0 ? iso(new Date(d.record.timestamp)) : null,
      error_name: text(d.error.name) || 'Error',
      error_message: text(d.error.message),
      error_code: text(d.error.code),
      error_stack: text(d.error.stack),
      attempts: d.attempts,
      first_failed_at: iso(d.firstFailedAt),
      last_failed_at: iso(d.lastFailedAt),
    })),
  );
}
