#!/bin/sh
# Stop the app gracefully: TERM, wait for in-flight requests (GRACEFUL_TIMEOUT),
# KILL what is left, and return once nothing listens on the port.
# Reads PORT (and the other settings) from the environment or .env.
set -eu
# shellcheck source=ops/common.sh
. "$(dirname -- "$0")/ops/common.sh"
serverctl stop
