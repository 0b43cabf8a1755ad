# Sourced by scripts/test.sh, scripts/demo.sh and .ci/run: installs the pinned pnpm when missing,
# the workspace's dependencies from the lockfile, and builds the packages. It sets no shell options:
# each caller keeps its own (the CI script must go on after a failed test run to report it).

PNPM_VERSION=12.4.2

ensure_pnpm() {
  if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
    echo "bootstrap: installing pnpm $PNPM_VERSION with npm"
    npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION" >/dev/null
  fi
}

# Each step is chained: `set -e` does not apply inside a function called from `a || b`.
install_and_build() {
  local offline=--prefer-offline
  [ -n "${CI:-}" ] && offline=
  ensure_pnpm && pnpm install --frozen-lockfile $offline && pnpm build
}
