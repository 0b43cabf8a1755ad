/** @oncely/postgres-offsets (in progress). */
export {};
