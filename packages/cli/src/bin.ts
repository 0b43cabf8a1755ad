#!/usr/bin/env node
import { main } from './main.js';

// kafkajs 2.2.4 arms a timer with a negative delay, which Node clamps to 1 ms as kafkajs intends;
// Node >= 23 warns about it on every connection. That one warning is dropped, every other is printed.
const printers = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning') return;
  for (const print of printers) print(warning);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
