#!/bin/sh
# Deliver new code and settings with no dropped request: check that the code
# loads, start a new gunicorn master beside the running one, and retire the old
# one once the new one serves. When the code does not load, the running server
# keeps serving its own code (exit 1). Starts the app when it is not running.
# Reads the same settings as start.sh.
set -eu
# The project folder holds this script (a symlink to it is followed).
script=$(readlink -f -- "$0" 2>/dev/null || printf '%s' "$0")
# shellcheck source=ops/common.sh
. "$(dirname -- "$script")/ops/common.sh"
ctl restart "$@"
