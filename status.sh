#!/bin/sh
# List the servers of this folder: port, pid, uptime, URL. Exit codes (LSB), for
# the server of PORT (from the environment or .env): 0 running, 1 dead but its
# pidfile is left, 3 not running, 4 unknown (running but not answering).
set -eu
# The project folder holds this script (a symlink to it is followed).
script=$(readlink -f -- "$0" 2>/dev/null || printf '%s' "$0")
ops=$(dirname -- "$script")/ops
# Root sources the helper only if no other user can have changed it (it checks
# the rest); this cannot live in the helper itself.
if [ "$(id -u)" = 0 ] && [ -n "$(find "$ops" "$ops/common.sh" -maxdepth 0 \( ! -user 0 -o -perm /022 \))" ]; then
    echo "error: $ops is open to other users, and root acts only on what they cannot change" >&2
    exit 4
fi
# shellcheck source=ops/common.sh
. "$ops/common.sh"
ctl status "$@"
