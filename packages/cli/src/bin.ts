#!/usr/bin/env node
import { restartWithWorkerFlags } from './node-flags.js';

// kafkajs 2.2.4 arms a timer with a negative delay, which Node clamps to 1 ms as kafkajs intends;
// Node >= 23 warns about it on every connection. That one warning is dropped, every other is printed
// (and process.execve's experimental warning, which only shows when the restart below failed).
const printers = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning') return;
  if (warning.name === 'ExperimentalWarning' && warning.message.includes('process.execve')) return;
  for (const print of printers) print(warning);
});

// `oncely run` is a long-running worker: it runs with the young generation node-flags.ts explains,
// by starting this process again with the flags before anything else is loaded.
if (process.argv[2] === 'run') restartWithWorkerFlags();

const { main } = await import('./main.js');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
