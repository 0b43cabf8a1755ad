import { hostname as osHostname, userInfo } from 'node:os';
import type { Knex } from 'knex';
import type { Rows } from '../sql/rows.js';

/** Who an operator action is recorded as when no actor is given: `<user>@<host>`. */
export function defaultActor(): string {
  try {
    return `${userInfo().username}@${osHostname()}`;
  } catch {
    return `unknown@${osHostname()}`;
  }
}

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
    { actor: entry.actor, action: entry.action, group: entry.group, details: JSON.stringify(entry.details) },
  );
  return BigInt(rows[0]!.id);
}
