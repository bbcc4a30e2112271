#!/usr/bin/env bash
# The runs benchmark: planning a 10,000-table run in the pure core, the dispatch latency from
# a job's completion to its child's dispatch on the local stack (p50, p99; split into the
# executor's share, transport and the planner's share), a job's end seen (parents held
# running 2, 10 and 60 s by the fault proxy), and a 1,000-table run of trivial queries end to
# end with its Firestore reads and writes per job. Each figure on its own line as
# `name: value unit`.
#   tests/bench/runs.sh [--run-tables N] [--concurrency N] [--plan-tables N]
#                       [--holds 2,10,60] [--job-end-samples N]
#                       [--dispatch-rounds 8] [--parts plan,push,dispatch,job-end,run]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

echo "building the services and bench_runs (release)..." >&2
cargo build --release --quiet --bins \
  -p baton-api -p baton-tick -p baton-planner -p baton-executor -p baton-importer
cargo build --release --quiet -p baton-tests --bin bench_runs

started_stack=
if ! tests/stack/stack.sh status >/dev/null 2>&1; then
  tests/stack/stack.sh start >&2
  started_stack=1
fi
stop_stack() { if [ -n "$started_stack" ]; then tests/stack/stack.sh stop >&2; fi; }
trap stop_stack EXIT

BATON_STACK_ENV="$root/tests/.stack/env" "${CARGO_TARGET_DIR:-target}/release/bench_runs" "$@"
