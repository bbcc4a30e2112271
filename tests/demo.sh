#!/usr/bin/env bash
# The demo: Baton's main job end to end on the local stack of emulators. Starts the stack if
# it is not running (and stops it again at the end), builds the workspace, and runs
# `demo`, which loads the example catalog, ticks, follows the run and prints the result.
#   tests/demo.sh [CATALOG_DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
stack=tests/stack/stack.sh

started=0
cleanup() { if [ "$started" -eq 1 ]; then "$stack" stop; fi; }
trap cleanup EXIT
if ! "$stack" status; then
  "$stack" start
  started=1
fi

echo "building the workspace (the first build takes a few minutes)..." >&2
cargo build --workspace --quiet
"${CARGO_TARGET_DIR:-target}/debug/demo" "$@"
