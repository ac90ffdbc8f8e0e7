#!/bin/sh
# Start the app under gunicorn in the background; return 0 once a worker
# answers /health/ping, or print why it could not start and leave nothing
# running. The settings (HOST, PORT ...) come from the environment or .env, as
# gunicorn.conf.py reads them.
# One server per port: PORT=5001 sh start.sh
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
ctl start "$@"
