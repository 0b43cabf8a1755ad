/**
 * Text that oncely writes into PostgreSQL (a dead letter's error name, message and stack, header
 * names, a worker's host, audit details): `text` and `jsonb` reject NUL, and a lone UTF-16
 * surrogate makes the JSON a statement unpacks invalid (22P02). Either would fail the statement
 * on every retry, so a lone surrogate becomes U+FFFD (String.prototype.toWellFormed) and so does
 * NUL. Only texts oncely made from errors and the environment pass here; records keep their bytes.
 */
export function pgText(s: string): string;
export function pgText(s: string | undefined | null): string | null;
export function pgText(s: unknown): string | null {
  if (s === undefined || s === null) return null;
  const str = typeof s === 'string' ? s : String(s);
  // ES2024 (Node 20+); the compiler's lib is ES2023.
  return (str as string & { toWellFormed(): string }).toWellFormed().replaceAll('\u0000', '\uFFFD');
}
