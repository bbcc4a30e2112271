#!/usr/bin/env bash
# The SQL dependency benchmark: Baton's reader (one core) and sqlglot with its C extension
# on the same generated corpus, the ratio between them, and the time to infer and plan a
# 10,000-table catalog (all cores). Each figure on its own line as `name: value unit`.
#   tests/bench/sql.sh [TEXTS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
texts=${1:-2000}
# shellcheck source=tests/bench/sqlglot_venv.sh
. tests/bench/sqlglot_venv.sh

echo "building bench_sql (release)..." >&2
cargo build --release --quiet -p baton-tests --bin bench_sql
corpus=$(mktemp)
trap 'rm -f "$corpus"' EXIT

baton=$("${CARGO_TARGET_DIR:-target}/release/bench_sql" --texts "$texts" --corpus-out "$corpus")
echo "$baton"
sqlglot=$("$venv/bin/python" tests/bench/sqlglot_bench.py "$corpus")
echo "$sqlglot"
ours=$(awk '/^sql_statements_per_second:/ {print $2}' <<<"$baton")
theirs=$(awk '/^sqlglot_statements_per_second:/ {print $2}' <<<"$sqlglot")
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "speedup_vs_sqlglot: %.1f x\n", a / b }'
