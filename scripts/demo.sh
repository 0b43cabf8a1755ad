#!/usr/bin/env bash
# The main job: installs what is missing, starts Kafka and PostgreSQL when needed, and runs the
# ledger demo (a worker SIGKILLed mid-stream several times, then an audit of every record).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bootstrap.sh
install_and_build
pnpm services up
exec node packages/examples/dist/ledger/demo.js "$@"
