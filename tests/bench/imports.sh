#!/usr/bin/env bash
# The import benchmark: a generated table of the stack's PostgreSQL and MariaDB copied to the
# staging bucket as the importer copies it (release build, one child process per copy, its
# peak resident memory reported), beside `psql \copy` and `mariadb --quick` reading the same
# SELECT to /dev/null in the same run, then loaded into local-bigquery. Each figure on its own
# line as `name: value unit`. Generating the tables takes a minute the first time.
#   tests/bench/imports.sh [--rows 1000000,5000000] [--source postgres,mysql] [--no-load]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

cargo build --quiet --release -p baton-tests --bin bench_imports

started_stack=
if ! tests/stack/stack.sh status >/dev/null 2>&1; then
  tests/stack/stack.sh start >&2
  started_stack=1
fi
stop_stack() { if [ -n "$started_stack" ]; then tests/stack/stack.sh stop >&2; fi; }
trap stop_stack EXIT

BATON_STACK_ENV="$root/tests/.stack/env" "${CARGO_TARGET_DIR:-target}/release/bench_imports" "$@"
