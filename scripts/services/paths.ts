import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in scripts/services/). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where services keep their state: jars, data, logs, pid files. Override with ONCELY_HOME. */
export const stateDir = resolve(process.env.ONCELY_HOME ?? join(repoRoot, '.oncely'));

export const kafkaDir = join(stateDir, 'kafka');
export const stateFile = join(stateDir, 'services.json');
