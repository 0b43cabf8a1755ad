/** The worker process: the app above, run from code. */
import app from './app.js';
import { runUntilCaughtUp } from './start.js';

await runUntilCaughtUp(app);
