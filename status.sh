#!/bin/sh
# Say whether the app runs and answers. Exit codes (LSB): 0 running and
# answering, 1 not running but a stale pidfile is left, 3 not running,
# 4 running but /health/ping does not answer. Reads PORT from the environment or .env.
set -eu
# shellcheck source=ops/common.sh
. "$(dirname -- "$0")/ops/common.sh"
serverctl status
