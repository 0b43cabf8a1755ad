import { hostname as osHostname, userInfo } from 'node:os';
import { pgText } from '@oncely/core';

/**
 * Who an audited action is recorded as when no actor is given: `<user>@<host>`. The store uses it
 * for a forced takeover (`--force`), the admin for operator actions.
 */
export function defaultActor(): string {
  // Written into text columns: NUL or a lone surrogate would fail the statement.
  try {
    return pgText(`${userInfo().username}@${osHostname()}`);
  } catch {
    return pgText(`unknown@${osHostname()}`);
  }
}
