#!/usr/bin/env bash
# Fails when a service's log line written since MARKER holds something secret in any of its
# known shapes: an API token (`baton-token_` and 43 base64url characters), a JWT (a Google ID or OIDC
# token), a PEM private key, a service account key's `private_key`, or a signed URL's
# signature. The people test looks for the exact secrets it used; this looks at every log line
# of the whole suite.
#   tests/no_secrets_in_logs.sh LOG_DIR [MARKER]
set -euo pipefail
log_dir=$1
marker=${2:-}
[ -d "$log_dir" ] || { echo "no secrets check: $log_dir does not exist" >&2; exit 0; }
newer=()
[ -n "$marker" ] && newer=(-newer "$marker")
patterns=(
  '(^|[^A-Za-z0-9_-])baton-token_[A-Za-z0-9_-]{43}([^A-Za-z0-9_-]|$)'
  'eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}'
  '-----BEGIN [A-Z ]*PRIVATE KEY'
  '"private_key"'
  'X-Goog-Signature='
)
files=$(find "$log_dir" -type f -name '*.log' "${newer[@]}")
count=$(printf '%s\n' "$files" | grep -c . || true)
found=0
for pattern in "${patterns[@]}"; do
  [ -n "$files" ] || break
  # xargs answers non-zero when any one grep found nothing: what it printed tells.
  printf '%s\n' "$files" | xargs grep -El -e "$pattern" >/tmp/baton-secrets.$$ 2>/dev/null || true
  if [ -s /tmp/baton-secrets.$$ ]; then
    echo "a log line holds a secret (pattern $pattern):" >&2
    sed 's/^/  /' /tmp/baton-secrets.$$ >&2
    found=1
  fi
done
rm -f /tmp/baton-secrets.$$
[ "$found" -eq 0 ] || exit 1
echo "no secrets in $count log files" >&2
