#!/bin/sh
# Set up and run every check: install requirements-dev.txt into the active
# virtual environment (or into venv/, made if missing), then ruff, shellcheck on
# every *.sh, and pytest. Arguments go to pytest, e.g. sh tests/run.sh -k config
set -eu
cd -- "$(dirname -- "$0")/.."

if [ -n "${VIRTUAL_ENV:-}" ]; then
    bin="$VIRTUAL_ENV/bin"
else
    [ -x venv/bin/python ] || python3 -m venv venv
    bin="venv/bin"
fi
"$bin/python" -m pip install --quiet -r requirements-dev.txt

"$bin/ruff" check .
"$bin/ruff" format --check .
git ls-files -z '*.sh' .ci/run | xargs -0 "$bin/shellcheck"
"$bin/python" -m pytest "$@"
