#!/bin/sh
# List the servers of this folder: port, pid, uptime, URL. Exit codes (LSB), for
# the server of PORT (from the environment or .env): 0 running, 1 dead but its
# record is left, 3 not running, 4 unknown (running but not answering).
set -eu
# The project folder holds this script (a symlink to it is followed).
script=$(readlink -f -- "$0" 2>/dev/null || printf '%s' "$0")
# shellcheck source=ops/common.sh
. "$(dirname -- "$script")/ops/common.sh"
ctl status "$@"
