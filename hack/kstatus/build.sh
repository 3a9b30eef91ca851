#!/usr/bin/env bash
# Builds `kstatus` (hack/kstatus/main.go on sigs.k8s.io/cli-utils' kstatus library) into a
# cache outside the repository, keyed by versions.env and main.go, and prints its path.
# Under a minute on a warm Go module cache; a later run, or a fresh clone, reuses it.
#
#   hack/kstatus/build.sh          build if needed, print the path of kstatus
#   hack/kstatus/build.sh --check  exit 1 if it is not built yet
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
log() { printf '[kstatus] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

key="$(cat "$here/versions.env" "$here/main.go" | sha256sum | cut -c1-12)"
cache_root="${AGENTRY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentry}"
dir="$cache_root/kstatus-$key"
out="$dir/bin/kstatus"
if [[ -x "$out" ]]; then
  echo "$out"
  exit 0
fi
[[ "${1:-}" == "--check" ]] && { log "kstatus not built yet in $dir"; exit 1; }
command -v go >/dev/null || die "go is not installed; kstatus is built from sigs.k8s.io/cli-utils (Go 1.26+)"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
start=$SECONDS
m="$dir/src"
rm -rf "$m" && mkdir -p "$m" "$dir/bin"
printf 'module agentry.local/kstatus\n\ngo 1.26.0\n' >"$m/go.mod"
cp "$here/main.go" "$m/main.go"
log "cli-utils $CLI_UTILS_VERSION: resolving modules"
(cd "$m" && go get "sigs.k8s.io/cli-utils@$CLI_UTILS_VERSION" >&2 && go mod tidy >&2)
(cd "$m" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" . >&2)
mv "$out.tmp" "$out"
log "done in $((SECONDS - start))s: $out"
echo "$out"
