#!/usr/bin/env bash
# The load tables' benchmark on the local stack: files claimed per second from their
# notifications, and 100 small files from their upload through signed URLs to their rows
# queryable. Each figure on its own line as `name: value unit`.
#   tests/bench/loads.sh [--files N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

echo "building the services and bench_loads (release)..." >&2
cargo build --release --quiet --bins \
  -p baton-api -p baton-tick -p baton-planner -p baton-executor -p baton-importer
cargo build --release --quiet -p baton-tests --bin bench_loads

started_stack=
if ! tests/stack/stack.sh status >/dev/null 2>&1; then
  tests/stack/stack.sh start >&2
  started_stack=1
fi
stop_stack() { if [ -n "$started_stack" ]; then tests/stack/stack.sh stop >&2; fi; }
trap stop_stack EXIT

BATON_STACK_ENV="$root/tests/.stack/env" "${CARGO_TARGET_DIR:-target}/release/bench_loads" "$@"
