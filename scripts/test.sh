#!/usr/bin/env bash
# The whole test suite against a real Kafka broker and a real PostgreSQL, both made available
# first (started when needed). Extra arguments go to vitest, e.g. `bash scripts/test.sh --project unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bootstrap.sh
install_and_build
ensure_chromium
pnpm services up
mkdir -p test-results
rm -f test-results/vitest.json test-results/vitest.status
set +e
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@"
status=$?
echo "$status" > test-results/vitest.status
set -e
node scripts/test-summary.mjs test-results/vitest.json || status=1
exit $status
