#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, helm) from their Go modules into a cache outside the
# repository, keyed by the pinned versions in versions.env. A later run, or a fresh
# clone on the same machine, reuses the cache. Prints the bin directory on stdout.
#
#   hack/controlplane/build.sh          build if needed, print the bin dir
#   hack/controlplane/build.sh --check  exit 1 if the cache is not complete
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

log() { printf '[controlplane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is not installed; the control plane is built from Go modules (install Go 1.26+)"

key="$(sha256sum "$here/versions.env" | cut -c1-12)"
cache_root="${AGENTRY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentry}"
dir="$cache_root/controlplane-$key"
bin="$dir/bin"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)

complete() {
  local b
  for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
}

if complete; then
  echo "$bin"
  exit 0
fi
[[ "${1:-}" == "--check" ]] && { log "control plane not built yet in $dir"; exit 1; }

mkdir -p "$bin" "$dir/src"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
start=$SECONDS

# module_for NAME: create an empty wrapper module in the cache to build inside.
module_for() {
  local m="$dir/src/$1"
  rm -rf "$m" && mkdir -p "$m"
  printf 'module agentry.local/controlplane/%s\n\ngo 1.26.0\n' "$1" >"$m/go.mod"
  echo "$m"
}

build_kubernetes() {
  local v="$KUBERNETES_VERSION" minor m modfile
  [[ -x "$bin/kube-apiserver" && -x "$bin/kube-controller-manager" && -x "$bin/kube-scheduler" && -x "$bin/kubectl" ]] && return
  log "kubernetes $v: resolving modules"
  m="$(module_for kubernetes)"
  modfile="$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$modfile" ]] || die "could not download k8s.io/kubernetes@$v"
  # k8s.io/kubernetes points its staging modules at ./staging; map each to its release tag.
  {
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/k8s.io/.*#\t\1 => \1 v0.'"${v#v1.}"'#p' "$modfile"
    echo ")"
  } >>"$m/go.mod"
  minor="$(echo "$v" | cut -d. -f2)"
  local pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  (cd "$m" && go get "${pkgs[@]/%/@$v}" >&2)
  local ld="-s -w"
  local p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  log "kubernetes $v: compiling kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (slow on a cold cache)"
  (cd "$m" && go build -trimpath -ldflags "$ld" -o "$bin/" "${pkgs[@]}" >&2)
}

build_etcd() {
  [[ -x "$bin/etcd" ]] && return
  log "etcd $ETCD_VERSION: building"
  local m
  m="$(module_for etcd)"
  (cd "$m" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 &&
    go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3 >&2)
}

build_simple() { # name package version
  [[ -x "$bin/$1" ]] && return
  log "$1 $3: building"
  local m
  m="$(module_for "$1")"
  (cd "$m" && go get "$2@$3" >&2 && go build -trimpath -ldflags "-s -w ${4:-}" -o "$bin/$1" "$2" >&2)
}

build_etcd
build_simple kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
build_simple helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
build_kubernetes

complete || die "build finished but binaries are missing in $bin"
cp "$here/versions.env" "$dir/versions.env"
log "done in $((SECONDS - start))s: $bin"
echo "$bin"
