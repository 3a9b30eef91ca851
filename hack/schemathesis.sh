#!/usr/bin/env bash
# Schemathesis (the contract test of the gateway's OpenAPI document) in a Python venv
# cached outside the repo, keyed by its pinned version. Prints the path of its `st`.
#   bash hack/schemathesis.sh              install when missing (needs PyPI), print the path
#   bash hack/schemathesis.sh --installed  print the path, or fail saying what to run (no network)
set -euo pipefail
VERSION=4.32.5
cache="${AGENTRY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentry}"
venv="$cache/schemathesis-$VERSION"
st="$venv/bin/st"
if [[ -x "$st" && -f "$venv/.complete" ]]; then
  echo "$st"
  exit 0
fi
if [[ "${1:-}" == "--installed" ]]; then
  echo "schemathesis $VERSION is not installed at $venv: run \`make fetch\` (or bash hack/schemathesis.sh) while PyPI is reachable" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "python3 (>= 3.10, with venv) is required for schemathesis" >&2; exit 1; }
echo "[schemathesis] installing $VERSION into $venv" >&2
rm -rf "$venv"
mkdir -p "$cache"
python3 -m venv "$venv" >&2 || { echo "python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2
"$st" --version >&2
touch "$venv/.complete"
echo "$st"
