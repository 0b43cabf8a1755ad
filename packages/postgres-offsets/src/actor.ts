import { hostname as osHostname, userInfo } from 'node:os';

/**
 * Who an audited action is recorded as when no actor is given: `<user>@<host>`. The store uses it
 * for a forced takeover (`--force`), the admin for operator actions.
 */
export function defaultActor(): string {
  try {
    return `${userInfo().username}@${osHostname()}`;
  } catch {
    return `unknown@${osHostname()}`;
  }
}
