#!/usr/bin/env bash
# Builds SeaweedFS (`weed`, an S3-compatible object store) from its Go module into a cache
# outside the repository, keyed by versions.env, and prints the binary's path on stdout.
# About 4 minutes cold on 2 cores; a later run, or a fresh clone, reuses the cache.
#
#   hack/s3/build.sh          build if needed, print the path of weed
#   hack/s3/build.sh --check  exit 1 if it is not built yet
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
log() { printf '[s3] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

key="$(sha256sum "$here/versions.env" | cut -c1-12)"
cache_root="${AGENTRY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentry}"
dir="$cache_root/seaweedfs-$key"
weed="$dir/bin/weed"
if [[ -x "$weed" ]]; then
  echo "$weed"
  exit 0
fi
[[ "${1:-}" == "--check" ]] && { log "SeaweedFS not built yet in $dir"; exit 1; }
command -v go >/dev/null || die "go is not installed; SeaweedFS is built from its Go module (Go 1.26+)"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
start=$SECONDS
m="$dir/src"
rm -rf "$m" && mkdir -p "$m" "$dir/bin"
printf 'module agentry.local/s3\n\ngo 1.26.0\n\nreplace %s\n' "$SEAWEEDFS_REPLACE" >"$m/go.mod"
log "seaweedfs $SEAWEEDFS_VERSION: resolving modules"
(cd "$m" && go get "github.com/seaweedfs/seaweedfs/weed@$SEAWEEDFS_VERSION" >&2)
log "seaweedfs: compiling weed (slow on a cold cache)"
(cd "$m" && go build -trimpath -ldflags "-s -w" -o "$dir/bin/weed.tmp" github.com/seaweedfs/seaweedfs/weed >&2)
mv "$dir/bin/weed.tmp" "$weed"
log "done in $((SECONDS - start))s: $weed"
echo "$weed"
