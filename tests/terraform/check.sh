#!/usr/bin/env bash
# The offline checks of terraform/, where `terraform validate` cannot run (no provider can be
# downloaded here):
#   check.sh           install what is missing, then `terraform fmt -check` and checkov; the
#                      schema and contract checks are Rust tests (`cargo test --test terraform`,
#                      part of tests/test.sh)
#   check.sh install   install the provider's schema and checkov (idempotent)
#   check.sh schema    install the provider's schema only
# The provider's schema is the jsii assembly of the npm package @cdktf/provider-google 16.12.1
# (generated from the google provider 6.50.0), kept under BATON_CACHE_DIR (~/.cache/baton).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache_dir=${BATON_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/baton}
schema_dir=$cache_dir/tfschema
package=@cdktf/provider-google@16.12.1
checkov_version=3.3.30
checkov_venv=$cache_dir/checkov-$checkov_version

say() { printf 'terraform checks: %s\n' "$*" >&2; }

install_schema() {
  [ -s "$schema_dir/package/.jsii" ] && [ "$(cat "$schema_dir/.package" 2>/dev/null)" = "$package" ] && return 0
  command -v npm >/dev/null || { say "npm is needed to fetch $package"; exit 1; }
  say "fetching $package from npm"
  rm -rf "$schema_dir"
  mkdir -p "$schema_dir"
  local tarball
  tarball=$(cd "$schema_dir" && npm pack --silent "$package")
  tar -xzf "$schema_dir/$tarball" -C "$schema_dir" package/.jsii
  rm -f "$schema_dir/$tarball"
  echo "$package" >"$schema_dir/.package"
}

install_checkov() {
  [ -x "$checkov_venv/bin/checkov" ] && return 0
  say "installing checkov $checkov_version into $checkov_venv"
  rm -rf "$checkov_venv"
  python3 -m venv "$checkov_venv"
  "$checkov_venv/bin/pip" install -q --disable-pip-version-check "checkov==$checkov_version"
}

case "${1:-check}" in
  schema) install_schema ;;
  install) install_schema; install_checkov ;;
  check)
    install_schema
    install_checkov
    if command -v terraform >/dev/null; then
      say "terraform fmt -check"
      terraform fmt -check -recursive "$root/terraform"
    else
      say "terraform is not installed: fmt not checked"
    fi
    say "checkov ($root/terraform/.checkov.yaml lists the skipped checks and why)"
    "$checkov_venv/bin/checkov" -d "$root/terraform" --config-file "$root/terraform/.checkov.yaml" \
      --skip-download --quiet --compact
    ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
