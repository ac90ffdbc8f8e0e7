# shellcheck shell=sh
# Sourced by start.sh, stop.sh, restart.sh and status.sh (POSIX sh): finds the
# project folder and the Python environment that has gunicorn, then hands over
# to ops/serverctl.py, which knows the settings, each server's record and logs,
# and how to tell our server from any other process.

# $script is the path of the script that sources this file, symlinks resolved.
# shellcheck disable=SC2154
PROJECT=$(CDPATH='' cd -- "$(dirname -- "$script")" && pwd -P)

# Set PYTHON to the environment that has gunicorn: the active one (venv or
# conda), else the project's venv/ or .venv/, else gunicorn's on PATH.
find_python() {
    for env in "${VIRTUAL_ENV:-}" "${CONDA_PREFIX:-}" "$PROJECT/venv" "$PROJECT/.venv"; do
        if [ -n "$env" ] && [ -x "$env/bin/gunicorn" ] && [ -x "$env/bin/python" ]; then
            PYTHON="$env/bin/python"
            return
        fi
    done
    if gunicorn=$(command -v gunicorn) && [ -x "$(dirname -- "$gunicorn")/python3" ]; then
        PYTHON="$(dirname -- "$gunicorn")/python3"
        return
    fi
    printf 'error: gunicorn not found; in %s run: %s\n' "$PROJECT" \
        "python3 -m venv venv && venv/bin/pip install -r requirements.txt" >&2
    exit 1
}

# Run one command of ops/serverctl.py (start, stop, restart or status).
serverctl() {
    find_python
    exec "$PYTHON" "$PROJECT/ops/serverctl.py" "$@"
}
