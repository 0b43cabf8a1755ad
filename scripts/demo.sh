#!/usr/bin/env bash
# The main job: installs what is missing, starts Kafka and PostgreSQL when needed, and runs the
# ledger demo (a worker SIGKILLed mid-stream several times, then an audit of every record).
# Arguments go to the demo: --payments N, --kills K, --partitions P, --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bootstrap.sh
install_and_build
# The demo finds the services in KAFKA_BROKERS and DATABASE_URL: `services env` makes them
# available and prints them as export lines. (An assignment, so that its failure stops the script.)
services_env="$(pnpm --silent services env)"
eval "$services_env"
exec node packages/examples/dist/ledger/demo.js "$@"
