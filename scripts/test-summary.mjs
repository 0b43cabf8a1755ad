// Prints one line `tests: N passed, N failed[, N skipped]` from vitest's JSON report.
// Exits 1 when the report is missing or counts no test, so "ran nothing" never looks green.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const file = process.argv[2] ?? 'test-results/vitest.json';
// `--extra-failed N`: failures found outside vitest (the benchmark smoke run in CI).
const extraAt = process.argv.indexOf('--extra-failed');
const extraFailed = extraAt > 0 ? Number(process.argv[extraAt + 1] ?? 0) : 0;
if (!existsSync(file)) {
  console.log(`no vitest report at ${file}: the test run did not finish`);
  console.log('tests: 0 passed, 1 failed');
  process.exit(1);
}
const report = JSON.parse(readFileSync(file, 'utf8'));
let passed = 0;
let failed = 0;
let skipped = 0;
for (const suite of report.testResults ?? []) {
  for (const t of suite.assertionResults ?? []) {
    if (t.status === 'passed') passed++;
    else if (t.status === 'failed') failed++;
    else skipped++;
  }
  // A file that failed to load has no assertion results but must count as a failure.
  if ((suite.assertionResults ?? []).length === 0 && suite.status === 'failed') failed++;
}
failed += extraFailed;
// scripts/test.sh records vitest's exit status next to the report: it fails after the report is
// written when the global teardown finds processes the tests left running.
const statusFile = join(dirname(file), 'vitest.status');
const vitestStatus = existsSync(statusFile) ? Number(readFileSync(statusFile, 'utf8').trim()) : 0;
if (vitestStatus !== 0 && failed === 0) {
  failed = 1;
  console.log(`vitest exited with ${vitestStatus} after its report (see its output above); counted as one failure`);
}
// Errors outside any test (a bad config, an unhandled rejection) fail the run too.
if (report.success === false && failed === 0) {
  failed = 1;
  console.log('vitest reported errors outside the tests; counted as one failure');
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(passed === 0 || failed > 0 ? 1 : 0);
