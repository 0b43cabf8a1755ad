/** @oncely/examples (in progress). */
export {};
