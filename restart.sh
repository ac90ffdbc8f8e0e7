#!/bin/sh
# Reload code and settings with no dropped requests: check that the new code
# loads, then HUP gunicorn, which starts new workers and retires the old ones.
# Starts the app when it is not running. Reads the same settings as start.sh.
set -eu
# shellcheck source=ops/common.sh
. "$(dirname -- "$0")/ops/common.sh"

load_settings
if ! find_server; then
    start_server
    exit 0
fi
# A HUP with code that does not import takes the whole server down: check first.
if ! error=$(cd -- "$PROJECT" && "$PYTHON" "$CTL" check-app); then
    fail "the app does not load: $error; $APP (pid $PID) keeps running the old code"
fi
"$PYTHON" "$CTL" reload "$PID" "$LOG" "$URL" "$WEB_CONCURRENCY" "$START_TIMEOUT" || exit 1
say "reloaded $APP (pid $PID)"
