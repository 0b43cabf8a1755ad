/** @oncely/cli (in progress). */
export {};
