# shellcheck shell=sh
# Sourced by start.sh, stop.sh, restart.sh and status.sh (POSIX sh).
# Knows the project folder, the Python that has gunicorn, the server settings
# (HOST, PORT, ... from the environment or .env, see ops/settings.py), the
# per-port pidfile and log files, and how to tell our server from a stranger.

PROJECT=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd -P)
APP=$(basename -- "$PROJECT")
CTL="$PROJECT/ops/serverctl.py"

say() {
    printf '%s\n' "$*"
}

fail() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

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
    fail "gunicorn not found; in $PROJECT run: python3 -m venv venv && venv/bin/pip install -r requirements.txt"
}

# Read the settings and name this port's files (one instance per port).
load_settings() {
    find_python
    settings=$("$PYTHON" "$CTL" settings) || exit 1
    eval "$settings" # shell-quoted by serverctl.py
    PIDFILE="$PROJECT/run/app-$PORT.pid"
    LOG="$PROJECT/logs/app-$PORT.log"
    ACCESS_LOG="$PROJECT/logs/access-$PORT.log"
}

# Return 0 and set PID when the pidfile names our running server. A stale
# pidfile (dead pid, or a process that is not our gunicorn) is removed, unless
# "keep" is given, and never acted on.
find_server() {
    PID=
    [ -f "$PIDFILE" ] || return 1
    if out=$("$PYTHON" "$CTL" owner "$PIDFILE"); then
        PID=$out
        return 0
    fi
    [ -n "$out" ] || return 1
    if [ "${1:-}" = keep ]; then
        say "stale pidfile run/app-$PORT.pid: $out"
    else
        rm -f -- "$PIDFILE"
        say "removed stale pidfile run/app-$PORT.pid: $out"
    fi
    return 1
}

# Start the server in the background; return once it answers.
start_server() {
    mkdir -p -- "$PROJECT/run" "$PROJECT/logs"
    PID=$("$PYTHON" "$CTL" launch "$PIDFILE" "$LOG" "$ACCESS_LOG" \
        "$HOST" "$PORT" "$URL" "$WEB_CONCURRENCY" "$START_TIMEOUT") || exit 1
    say "started $APP (pid $PID) at http://$BIND, logs in logs/"
}
