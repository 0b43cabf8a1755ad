import { pgText } from '@oncely/core';
import type { Knex } from 'knex';
import type { Rows } from '../sql/rows.js';

export { defaultActor } from '../actor.js';

/**
 * Writes one admin_audit row in the transaction that makes the change; returns its id.
 * clock_timestamp(), not now(): the moment of the change, which point-in-time lookups compare with commits.
 */
export async function writeAudit(
  tx: Knex.Transaction,
  quotedSchema: string,
  entry: { actor: string; action: string; group: string | null; details: object },
): Promise<bigint> {
  const { rows } = await tx.raw<Rows<{ id: string }>>(
    `insert into ${quotedSchema}.admin_audit (at, actor, action, group_id, details)
     values (clock_timestamp(), :actor, :action, :group, :details::jsonb) returning id::text`,
    {
      actor: pgText(entry.actor),
      action: entry.action,
      group: entry.group,
      // jsonb rejects NUL and lone surrogates in any string of the details (an operator's note, a host).
      details: JSON.stringify(entry.details, (_k, v: unknown) => (typeof v === 'string' ? pgText(v) : v)),
    },
  );
  return BigInt(rows[0]!.id);
}

/** One admin_audit row: who did what to which group, and the details the action recorded. */
export interface AuditEntry {
  id: bigint;
  at: Date;
  actor: string;
  action: string;
  group: string | null;
  details: unknown;
}

/** admin_audit rows, newest first (optionally one group's), at most `limit` (default 100). */
export async function readAuditLog(
  db: Knex | Knex.Transaction,
  quotedSchema: string,
  query: { group?: string; limit?: number },
): Promise<AuditEntry[]> {
  const { rows } = await db.raw<
    Rows<{ id: string; at: Date; actor: string; action: string; group_id: string | null; details: unknown }>
  >(
    `select a.id::text, at, actor, action, group_id, details from ${quotedSchema}.admin_audit a
      where (:group::text is null or group_id = :group::text) order by a.at desc, a.id desc limit :limit::int`,
    { group: query.group ?? null, limit: query.limit ?? 100 },
  );
  return rows.map((r) => ({
    id: BigInt(r.id),
    at: r.at,
    actor: r.actor,
    action: r.action,
    group: r.group_id,
    details: r.details,
  }));
}
