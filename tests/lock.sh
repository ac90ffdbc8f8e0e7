#!/bin/sh
# Refresh the locks: uv.lock from pyproject.toml, then requirements.txt (the
# app) and requirements-dev.txt (the app and the tools) exported from it, with
# hashes, for pip, conda and the offline routes. Versions already locked stay;
# -U upgrades everything within pyproject.toml's bounds. Prints only the
# versions that changed. Needs the package index, and uv (in the tools).
#   sh tests/lock.sh        sh tests/lock.sh -U
set -eu
cd -- "$(dirname -- "$0")/.."

uv=${VIRTUAL_ENV:-venv}/bin/uv
if [ ! -x "$uv" ]; then
    echo "error: $uv not found: run sh tests/run.sh first, which installs the tools" >&2
    exit 1
fi
case "$*" in
"") ;;
-U) set -- --upgrade ;;
*) echo "usage: sh tests/lock.sh [-U]" >&2 && exit 2 ;;
esac

# name==version of every package, one a line.
pins() {
    sed -n 's/^\([A-Za-z0-9._-]*==[^ ;\\]*\).*/\1/p' requirements-dev.txt | sort -u
}
before=$(mktemp)
trap 'rm -f "$before"' EXIT
pins >"$before"

"$uv" lock --quiet "$@"
"$uv" export --quiet --frozen --no-emit-project --no-dev -o requirements.txt
"$uv" export --quiet --frozen --no-emit-project --all-groups -o requirements-dev.txt

pins | diff "$before" - | sed -n 's/^< /removed /p; s/^> /added   /p'
