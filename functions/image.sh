#!/usr/bin/env bash
# The services' container images, built offline: one image per service, FROM scratch, holding
# the service's statically linked binary (the gnu target with `-C target-feature=+crt-static`:
# no base image can be pulled and only the gnu target's standard library is installed), CA
# certificates and a nonroot user.
#
#   image.sh build              build the release binaries and the images baton-SERVICE:VERSION
#   image.sh push REPOSITORY    push them as REPOSITORY/baton-SERVICE:VERSION (build first)
#   image.sh test               build, then start each service from its image and get /healthz
#   image.sh sizes              print each binary's and image's size (`name: value unit` lines)
#
# Images are kept by buildah (vfs storage, no daemon); buildah is installed with apt if
# missing. The binaries are in target/image/x86_64-unknown-linux-gnu/release.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
services=(tick planner executor importer api)
target=x86_64-unknown-linux-gnu
target_dir=$root/target/image
bin_dir=$target_dir/$target/release
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
buildah=(buildah --storage-driver vfs)
nonroot=65532

say() { printf 'image: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

ensure_buildah() {
  command -v buildah >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] || die "buildah is missing (apt-get install buildah, as root)"
  say "installing buildah with apt"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      buildah; } >/tmp/baton-buildah-apt.log 2>&1 || { tail -n 20 /tmp/baton-buildah-apt.log >&2; die "apt-get install buildah failed"; }
}

build_binaries() {
  say "building the services in release, statically linked (a clean build takes several minutes)"
  local packages=()
  for s in "${services[@]}"; do packages+=(-p "baton-$s"); done
  # With --target, RUSTFLAGS reach only the target's code, not build scripts and proc macros
  # (which cannot be static).
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet --target "$target" \
    --target-dir "$target_dir" "${packages[@]}"
  for s in "${services[@]}"; do
    if readelf -l "$bin_dir/baton-$s" | grep -q 'INTERP'; then
      die "baton-$s is dynamically linked: it would not start in an empty image"
    fi
  done
}

# The files every image holds besides its binary: CA certificates for TLS to Google's APIs and
# a passwd naming the nonroot user the service runs as.
rootfs() {
  local dir=$1
  mkdir -p "$dir/etc/ssl/certs" "$dir/tmp"
  [ -f /etc/ssl/certs/ca-certificates.crt ] || die "no CA certificates at /etc/ssl/certs (apt-get install ca-certificates)"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$nonroot" "$nonroot" >"$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%s:\n' "$nonroot" >"$dir/etc/group"
  chmod 1777 "$dir/tmp"
}

build_images() {
  ensure_buildah
  build_binaries
  local staging ctr s
  staging=$(mktemp -d)
  rootfs "$staging"
  for s in "${services[@]}"; do
    ctr=$("${buildah[@]}" from --quiet scratch)
    "${buildah[@]}" copy --quiet "$ctr" "$staging" / >/dev/null
    "${buildah[@]}" copy --quiet --chmod 0555 "$ctr" "$bin_dir/baton-$s" "/baton-$s" >/dev/null
    "${buildah[@]}" config \
      --entrypoint "[\"/baton-$s\"]" --cmd '' \
      --user "$nonroot:$nonroot" --workingdir / \
      --env HOST=0.0.0.0 --env PORT=8080 --port 8080 \
      --label org.opencontainers.image.title="baton-$s" \
      --label org.opencontainers.image.version="$version" \
      "$ctr"
    # The image this replaces would stay behind untagged: remove it.
    "${buildah[@]}" rmi -f "localhost/baton-$s:$version" >/dev/null 2>&1 || true
    "${buildah[@]}" commit --quiet --rm "$ctr" "localhost/baton-$s:$version" >/dev/null
    say "built localhost/baton-$s:$version"
  done
  rm -rf "$staging"
}

push_images() {
  local repository=${1:?usage: image.sh push REPOSITORY}
  ensure_buildah
  local s
  for s in "${services[@]}"; do
    "${buildah[@]}" push "localhost/baton-$s:$version" "docker://$repository/baton-$s:$version"
    say "pushed $repository/baton-$s:$version"
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts each service from its image (buildah run, chroot isolation, the host's network) with
# the local stack's emulators, and waits for a 200 on /healthz.
test_images() {
  build_images
  local stack=tests/stack/stack.sh started=0
  if ! "$stack" status; then
    "$stack" start
    started=1
  fi
  local env_args=() line
  while IFS= read -r line; do
    case "$line" in
      FIRESTORE_EMULATOR_HOST=* | PUBSUB_EMULATOR_HOST=* | STORAGE_EMULATOR_HOST=* | BIGQUERY_EMULATOR_HOST=*)
        env_args+=(--env "$line") ;;
    esac
  done <"$("$stack" env)"
  local s ctr port pid ok failed=0
  for s in "${services[@]}"; do
    port=$(free_port)
    ctr=$("${buildah[@]}" from --quiet "localhost/baton-$s:$version")
    setsid "${buildah[@]}" run --isolation chroot "${env_args[@]}" \
      --env BATON_PROJECT=image-test --env HOST=127.0.0.1 --env "PORT=$port" \
      --env BATON_AUTH_AUDIENCE="https://baton-$s.local.test" \
      --env BATON_AUTH_CALLERS=baton-push@image-test.iam.gserviceaccount.com \
      --env BATON_OAUTH_CLIENT_ID=image-test.apps.googleusercontent.com \
      "$ctr" -- "/baton-$s" >"$target_dir/image-test-$s.log" 2>&1 </dev/null &
    pid=$!
    ok=0
    for _ in $(seq 1 300); do
      if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null; then ok=1; break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    "${buildah[@]}" rm "$ctr" >/dev/null
    if [ $ok -eq 1 ]; then
      say "baton-$s from its image answered /healthz"
    else
      say "baton-$s from its image did not answer /healthz:"
      tail -n 20 "$target_dir/image-test-$s.log" >&2
      failed=1
    fi
  done
  [ $started -eq 1 ] && "$stack" stop
  [ $failed -eq 0 ] || die "a service did not start from its image"
  echo "image test: 5 passed, 0 failed"
}

sizes() {
  local s bytes
  for s in "${services[@]}"; do
    bytes=$(stat -c %s "$bin_dir/baton-$s")
    awk -v s="$s" -v b="$bytes" 'BEGIN { printf "binary_size_%s: %.1f MB\n", s, b / 1e6 }'
  done
  # An image's size as a registry holds it and Cloud Run pulls it: its layer gzip-compressed,
  # with its manifest and config (an OCI archive), and unpacked.
  local archive
  archive=$(mktemp -d)
  for s in "${services[@]}"; do
    "${buildah[@]}" push --quiet "localhost/baton-$s:$version" "oci-archive:$archive/$s.tar" >/dev/null
    bytes=$(stat -c %s "$archive/$s.tar")
    awk -v s="$s" -v b="$bytes" 'BEGIN { printf "image_size_%s: %.1f MB\n", s, b / 1e6 }'
    "${buildah[@]}" images --format 'image_unpacked_size_'"$s"': {{.Size}}' "localhost/baton-$s:$version" |
      tr -s ' ' 
  done
  rm -rf "$archive"
}

case "${1:-}" in
  build) build_images ;;
  push) shift; push_images "$@" ;;
  test) test_images ;;
  sizes) sizes ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
