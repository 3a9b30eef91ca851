#!/usr/bin/env bash
# Builds agentry's four images (Dockerfile.operator, .gateway, .agent, .sandbox) with podman
# (buildah inside, no Docker daemon), or prints the docker commands where podman is missing.
# Builds run with the host's network (`--network host`: npm ci and apt-get in the build
# stages need it on a cold cache) and reuse podman's layer cache, so a warm run is fast.
#
#   hack/images/build.sh            build (or print, without podman)
#   hack/images/build.sh --print    only print the docker commands
#   hack/images/build.sh --test     the images the container suite runs: local base, tag
#                                   localhost/agentry/<name>:test, ids in .tmp/images/;
#                                   without podman (or root) it says so and succeeds, except
#                                   under CI=true
#
# Environment: IMAGE_REGISTRY (ghcr.io/agentry-dev), IMAGE_TAG (the package.json version),
# NODE_IMAGE (the base; empty: the Dockerfiles' pinned public base; `local`: the local
# equivalent made by hack/images/base.sh), AGENTRY_IMAGES (which ones, default all four),
# AGENTRY_OCI_RUNTIME (runc: crun fails on the cgroup v1 hosts here).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mode="${1:-build}"
names=(${AGENTRY_IMAGES:-operator gateway agent sandbox})
registry="${IMAGE_REGISTRY:-ghcr.io/agentry-dev}"
tag="${IMAGE_TAG:-$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)}"
base="${NODE_IMAGE:-}"
runtime="${AGENTRY_OCI_RUNTIME:-runc}"
ids=""
if [[ "$mode" == "--test" ]]; then
  registry=localhost/agentry
  tag=test
  base=local
  ids="$root/.tmp/images"
fi

print_docker() {
  local n
  for n in "${names[@]}"; do
    echo "docker build -f Dockerfile.$n${base:+ --build-arg NODE_IMAGE=$base} -t $registry/$n:$tag ."
  done
}

if [[ "$mode" == "--print" ]]; then
  print_docker
  exit 0
fi
if [[ "$mode" == "--test" ]]; then
  why=""
  if ! command -v podman >/dev/null; then
    why="podman is not installed (Debian: apt-get install podman runc debootstrap uidmap)"
  elif [[ "$(id -u)" != 0 ]] && ! bash "$here/base.sh" --check 2>/dev/null; then
    why="making the local base image needs root (debootstrap) once"
  fi
  if [[ -n "$why" ]]; then
    rm -rf "$ids"
    [[ "${CI:-}" == "true" ]] && die "$why; CI=true needs the images for the container suite"
    log "not building the test images: $why; the container suite will be skipped"
    exit 0
  fi
elif ! command -v podman >/dev/null; then
  log "podman is not installed: the commands to build the images with Docker are"
  print_docker
  exit 0
fi

if [[ "$base" == "local" ]]; then
  base="$(bash "$here/base.sh")"
fi

# The test images are keyed by their inputs: the Dockerfiles, .dockerignore, every file the
# Dockerfiles copy from the context (tests aside) and the base. Their ids are recorded in the
# cache under that key, so when the same inputs were built before (in this checkout or a
# fresh clone) and the images still exist, there is nothing to do, not even a podman build.
inputs_key() {
  local sources
  sources="$(sed -n 's/^COPY \([^-].*\) [^ ]*$/\1/p' Dockerfile.* | tr ' ' '\n' | sort -u)"
  {
    echo "$base ${names[*]}"
    cat Dockerfile.* .dockerignore
    # shellcheck disable=SC2086
    find $sources -type f -not -name '*.test.ts' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}
if [[ -n "$ids" ]]; then
  key="$(inputs_key)"
  cache_root="${AGENTRY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentry}"
  record="$cache_root/images/test-$key"
  current=true
  for n in "${names[@]}"; do
    [[ -f "$record/$n.iid" ]] && podman image exists "$(cat "$record/$n.iid")" || { current=false; break; }
  done
  rm -rf "$ids" && mkdir -p "$ids"
  if $current; then
    cp "$record"/*.iid "$ids"/
    log "test images are current (inputs $key)"
    exit 0
  fi
fi

start=$SECONDS
summary=()
for n in "${names[@]}"; do
  t0=$SECONDS
  ref="$registry/$n:$tag"
  log "building $ref from Dockerfile.$n${base:+ on $base}"
  args=(build --runtime "$runtime" --network host --layers --pull=never
    --label "org.opencontainers.image.version=$tag"
    -f "Dockerfile.$n" -t "$ref")
  [[ -n "$base" ]] && args+=(--build-arg "NODE_IMAGE=$base")
  [[ -z "$base" ]] && args=("${args[@]/--pull=never/--pull=missing}")
  [[ -n "$ids" ]] && args+=(--iidfile "$ids/$n.iid.tmp")
  # The build's own output goes to a log (printed when it fails).
  mkdir -p "$root/.tmp/images-logs"
  buildlog="$root/.tmp/images-logs/$n.build.log"
  if ! podman "${args[@]}" . >"$buildlog" 2>&1; then
    tail -n 40 "$buildlog" >&2
    [[ -z "$base" ]] && log "the public base cannot be pulled here? make images NODE_IMAGE=local builds on a local one"
    die "building $ref failed (whole log: $buildlog)"
  fi
  [[ -n "$ids" ]] && mv "$ids/$n.iid.tmp" "$ids/$n.iid"
  size="$(podman image inspect --format '{{.Size}}' "$ref")"
  summary+=("$(printf '%-10s %-40s %4d MB  %3ds' "$n" "$ref" $((size / 1000000)) $((SECONDS - t0)))")
done
log "built in $((SECONDS - start))s:"
printf '  %s\n' "${summary[@]}" >&2
if [[ -n "$ids" ]]; then
  mkdir -p "$record" && cp "$ids"/*.iid "$record"/
fi
exit 0
