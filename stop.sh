#!/bin/sh
# Stop the app gracefully: TERM, wait for in-flight requests (GRACEFUL_TIMEOUT),
# KILL what is left, and return once it is gone. Stops the server of PORT (from
# the environment or .env); sh stop.sh --all stops every server of this folder.
set -eu
# shellcheck source=ops/common.sh
. "$(dirname -- "$0")/ops/common.sh"
serverctl stop "$@"
