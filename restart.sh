#!/bin/sh
# Deliver new code and settings with no dropped request: check that the code
# loads, start a new gunicorn master beside the running one, and retire the old
# one once the new one serves. When the code does not load, the running server
# keeps serving its own code (exit 1). Starts the app when it is not running.
# Reads the same settings as start.sh.
set -eu
# The project folder holds this script (a symlink to it is followed).
script=$(readlink -f -- "$0" 2>/dev/null || printf '%s' "$0")
ops=$(dirname -- "$script")/ops
# Root sources the helper only if no other user can have changed it (it checks
# the rest); this cannot live in the helper itself.
if [ "$(id -u)" = 0 ] && [ -n "$(find "$ops" "$ops/common.sh" -maxdepth 0 \( ! -user 0 -o -perm /022 \))" ]; then
    echo "error: $ops is open to other users, and root acts only on what they cannot change" >&2
    exit 1
fi
# shellcheck source=ops/common.sh
. "$ops/common.sh"
ctl restart "$@"
