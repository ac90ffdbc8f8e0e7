#!/bin/sh
# List the servers of this folder: port, pid, uptime, URL. Exit codes (LSB), for
# the server of PORT (from the environment or .env): 0 running, 1 dead but its
# record is left, 3 not running, 4 unknown (running but not answering).
set -eu
# shellcheck source=ops/common.sh
. "$(dirname -- "$0")/ops/common.sh"
serverctl status "$@"
