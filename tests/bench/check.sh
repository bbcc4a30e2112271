#!/usr/bin/env bash
# `baton check` on generated catalog folders of 1,000, 5,000 and 10,000 tables (wall time, best
# of three, and peak RSS): cold, warm (unchanged since the last check) and with one file
# changed, beside sqlglot's BigQuery tokenizer over the same files in the same
# run; and the SVG layout of the 1,000-table catalog's graph (`baton graph --format svg`'s own
# work). Each figure on its own line as `name: value unit`.
#   tests/bench/check.sh [SIZES…]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 5000 10000)
# shellcheck source=tests/bench/sqlglot_venv.sh
. tests/bench/sqlglot_venv.sh
echo "building baton and bench_sql (release)..." >&2
cargo build --release --quiet -p baton-cli --bin baton -p baton-tests --bin bench_sql
bin=${CARGO_TARGET_DIR:-target}/release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in "${sizes[@]}"; do
  dir=$tmp/catalog-$n
  "$bin/bench_sql" --texts 1 --catalog "$n" --catalog-out "$dir" | sed "s/^/check_${n}_/"
  # Each run in a fresh process: wall time and the child's peak RSS. Cold: every table's SQL
  # read (--no-cache); warm: checked again unchanged, the reader's answers kept since (the
  # first warm run fills the cache and is not counted); one file changed: that file read.
  BATON_CACHE_DIR=$tmp/cache-$n python3 - "$n" "$bin/baton" "$dir" <<'PY'
import pathlib, resource, subprocess, sys, time
n, baton, folder = sys.argv[1], sys.argv[2], sys.argv[3]

def run(*extra):
    started = time.perf_counter()
    done = subprocess.run([baton, "check", folder, *extra], capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"baton check failed: {done.stderr[:2000]}")
    return took, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, done.stdout.strip()

def best(name, *extra, before=None):
    walls = []
    for _ in range(3):
        if before:
            before()
        took, rss, said = run(*extra)
        walls.append(took)
    print(f"check_{n}_{name}_wall: {min(walls) * 1000:.0f} ms")
    print(f"check_{n}_{name}_says: {said}")
    return rss

rss = best("cold", "--no-cache")
print(f"check_{n}_cold_peak_rss: {rss:.0f} MB")
run()
best("warm")
one = sorted(pathlib.Path(folder).rglob("*.sql"))[0]
text = one.read_text()
flips = iter(range(1000))
best("one_changed", before=lambda: one.write_text(f"{text}\n-- edit {next(flips)}\n"))
one.write_text(text)
PY
  "$venv/bin/python" - "$n" "$dir" <<'PY'
import pathlib, resource, sys, time
from sqlglot.dialects.bigquery import BigQuery
n, folder = sys.argv[1], pathlib.Path(sys.argv[2])
texts = [p.read_text() for p in sorted(folder.rglob("*.sql"))]
tokenizer = BigQuery().tokenizer_class()
started = time.perf_counter()
tokens = sum(len(tokenizer.tokenize(t)) for t in texts)
took = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"check_{n}_sqlglot_tokenize_wall: {took * 1000:.0f} ms ({tokens} tokens, files already read)")
print(f"check_{n}_sqlglot_peak_rss: {rss:.0f} MB")
PY
done
"$bin/bench_sql" --texts 1 --catalog 1000 --layout | grep '^graph_layout'
