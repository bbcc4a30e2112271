#!/usr/bin/env bash
# The services as they ship: each one's time from start to its first 200 on /healthz and its
# idle resident memory (the static release binaries the images hold, against the local
# stack's emulators), then each binary's and image's size. Each figure on its own line as
# `name: value unit`. Builds the images first (functions/image.sh build).
#   tests/bench/services.sh [--runs N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

functions/image.sh build
# The measurer's own speed does not matter: a debug build spawns the release services.
cargo build --quiet -p baton-tests --bin bench_services

started_stack=
if ! tests/stack/stack.sh status >/dev/null 2>&1; then
  tests/stack/stack.sh start >&2
  started_stack=1
fi
stop_stack() { if [ -n "$started_stack" ]; then tests/stack/stack.sh stop >&2; fi; }
trap stop_stack EXIT

BATON_STACK_ENV="$root/tests/.stack/env" "${CARGO_TARGET_DIR:-target}/debug/bench_services" \
  target/image/x86_64-unknown-linux-gnu/release "$@"
functions/image.sh sizes
