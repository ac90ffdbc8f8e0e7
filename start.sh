#!/bin/sh
# Start the app under gunicorn in the background; return 0 once every worker
# serves and /health/ping answers, or print why it could not start and leave
# nothing running. Reads HOST, PORT, WEB_CONCURRENCY, LOG_LEVEL,
# GRACEFUL_TIMEOUT, START_TIMEOUT and ACCESS_LOG from the environment or .env.
# One server per port: PORT=5001 sh start.sh
set -eu
# The project folder holds this script (a symlink to it is followed).
script=$(readlink -f -- "$0" 2>/dev/null || printf '%s' "$0")
# shellcheck source=ops/common.sh
. "$(dirname -- "$script")/ops/common.sh"
ctl start "$@"
