/**
 * The crash test (see test/support/crash.ts) with the platformatic reader adapter: the same worker,
 * kills and audit as test/crash.test.ts, with fewer kills by default (20) to keep CI short;
 * ONCELY_CRASH_KILLS raises both for a soak.
 */
import { crashTest } from './support/crash.js';

crashTest('platformatic', Number(process.env.ONCELY_CRASH_KILLS ?? 20));
