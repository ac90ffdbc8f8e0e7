#!/bin/sh
# Reload code and settings with no dropped request: check that the new code
# loads, then HUP gunicorn, which starts new workers and retires the old ones.
# When the code does not load, the running server is left as it was (exit 1).
# Starts the app when it is not running. Reads the same settings as start.sh.
set -eu
# shellcheck source=ops/common.sh
. "$(dirname -- "$0")/ops/common.sh"
serverctl restart
