# Sourced by scripts/test.sh, scripts/demo.sh and .ci/run: installs the pinned pnpm when missing,
# the workspace's dependencies from the lockfile, and builds the packages.
set -euo pipefail

PNPM_VERSION=12.4.2

ensure_pnpm() {
  if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
    echo "bootstrap: installing pnpm $PNPM_VERSION with npm"
    npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION" >/dev/null
  fi
}

install_and_build() {
  ensure_pnpm
  if [ -n "${CI:-}" ]; then
    pnpm install --frozen-lockfile
  else
    pnpm install --frozen-lockfile --prefer-offline
  fi
  pnpm build
}
