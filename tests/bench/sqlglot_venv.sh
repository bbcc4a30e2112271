# Sourced by the SQL benchmarks: sets `venv` to a venv under the cache holding sqlglot[c]
# 30.30.0 (the version the README's figures name), installing it the first time.
cache=${BATON_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/baton}
venv=$cache/venv-sqlglot
if [ ! -x "$venv/bin/python" ] \
  || ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("sqlglotc")' 2>/dev/null; then
  echo "installing sqlglot[c] into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'sqlglot[c]==30.30.0'
fi
