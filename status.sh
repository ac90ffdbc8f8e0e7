#!/bin/sh
# Say whether the app runs and answers. Exit codes (LSB): 0 running and
# answering, 1 not running but a stale pidfile is left, 3 not running,
# 4 running but /health/ping does not answer. Reads PORT from the environment or .env.
set -eu
# shellcheck source=ops/common.sh
. "$(dirname -- "$0")/ops/common.sh"

load_settings
if find_server keep; then
    if "$PYTHON" "$CTL" ping "$URL"; then
        say "$APP is running (pid $PID) at http://$BIND"
        exit 0
    fi
    say "$APP is running (pid $PID) but $URL does not answer"
    exit 4
fi
if [ -f "$PIDFILE" ]; then
    exit 1
fi
say "$APP is not running"
exit 3
