#!/bin/sh
# Stop the app gracefully: TERM, wait for in-flight requests (GRACEFUL_TIMEOUT),
# KILL what is left, and return once it is gone. Stops the server of PORT (from
# the environment or .env); sh stop.sh --all stops every server of this folder.
set -eu
# The project folder holds this script (a symlink to it is followed).
script=$(readlink -f -- "$0" 2>/dev/null || printf '%s' "$0")
# shellcheck source=ops/common.sh
. "$(dirname -- "$script")/ops/common.sh"
ctl stop "$@"
