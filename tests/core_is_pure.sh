#!/usr/bin/env bash
# The core crate's dependency tree (with its in-memory model, and its tests' crates) holds no
# Firestore, HTTP, Google or async-runtime crate: the line between the core and the adapters
# is kept by the compiler, and this keeps a new dependency from moving it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

forbidden='^(firestore|gcloud-sdk|gcp-bigquery-client|google-cloud-[a-z-]+|tonic|tokio|async-std|smol|reqwest|hyper|http|axum|tower) '
tree=$(cargo tree -p baton-core --features memory -e normal,build,dev --prefix none --offline 2>/dev/null \
  || cargo tree -p baton-core --features memory -e normal,build,dev --prefix none)
found=$(printf '%s\n' "$tree" | grep -E "$forbidden" | sort -u || true)
if [ -n "$found" ]; then
  echo "baton-core depends on crates it must not (Firestore, HTTP, Google, async runtimes):" >&2
  printf '%s\n' "$found" >&2
  exit 1
fi
echo "baton-core: $(printf '%s\n' "$tree" | sort -u | wc -l) crates in its tree, none of Firestore, HTTP, Google or an async runtime"
