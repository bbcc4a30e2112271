#!/usr/bin/env bash
# The tests: every unit, property and end-to-end test, against the local stack of emulators.
# Starts the stack if it is not running (and stops it again at the end). Arguments go to
# `cargo test`, e.g. `tests/test.sh -p baton-core` or `tests/test.sh --test first_run`.
# Afterwards, every log line the services wrote meanwhile is searched for secrets
# (tests/no_secrets_in_logs.sh).
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

# The core stays pure: nothing of Firestore, HTTP, Google or an async runtime in its tree.
tests/core_is_pure.sh

# The Terraform tests read the google provider's schema (an npm package, cached).
tests/terraform/check.sh schema

# The end-to-end tests start the services' binaries: build them all first.
cargo build --workspace --all-targets
marker=$(mktemp)
BATON_STACK_ENV="$("$stack" env)" cargo test --workspace "$@"
tests/no_secrets_in_logs.sh "${CARGO_TARGET_DIR:-target}/debug/baton-logs" "$marker"
rm -f "$marker"
