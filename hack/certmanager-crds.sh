#!/usr/bin/env bash
# Prints the directory holding cert-manager's CRDs, taken from its Go module through the Go
# module proxy (downloaded once into Go's module cache, outside the repo). Used by the tests
# of the chart's cert-manager mode; CERT_MANAGER_VERSION overrides the pinned version.
set -euo pipefail
version="${CERT_MANAGER_VERSION:-v1.19.1}"
command -v go >/dev/null || { echo "Go is required to fetch cert-manager $version's CRDs" >&2; exit 1; }
json="$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "github.com/cert-manager/cert-manager@${version}")"
dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -n "$dir" && -d "$dir/deploy/crds" ]] || { echo "cert-manager $version: no deploy/crds in its module ($json)" >&2; exit 1; }
echo "$dir/deploy/crds"
