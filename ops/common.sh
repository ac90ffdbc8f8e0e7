# shellcheck shell=sh
# Sourced by start.sh, stop.sh, restart.sh and status.sh (POSIX sh): finds the
# project folder and the Python environment that has gunicorn, then runs one
# command of ops/ctl.py, which does the work.

# $script is the path of the script that sources this file, symlinks resolved.
# shellcheck disable=SC2154
PROJECT=$(CDPATH='' cd -- "$(dirname -- "$script")" && pwd -P)

# Set ENV to the environment that has gunicorn: the active one (venv or conda),
# else the project's venv/ or .venv/, else gunicorn's on PATH.
find_python() {
    on_path=$(command -v gunicorn) || on_path=/
    for ENV in "${VIRTUAL_ENV:-}" "${CONDA_PREFIX:-}" "$PROJECT/venv" "$PROJECT/.venv" "${on_path%/bin/*}"; do
        if [ -n "$ENV" ] && [ -x "$ENV/bin/gunicorn" ] && [ -x "$ENV/bin/python" ]; then
            ENV=$(CDPATH='' cd -- "$ENV" && pwd -P)  # what is checked is what runs
            return
        fi
    done
    printf 'error: gunicorn not found; in %s run: %s\n' "$PROJECT" \
        "python3 -m venv venv && venv/bin/pip install -r requirements.txt" >&2
    exit 1
}

# Root runs nothing that another user could have changed, follows none of
# that user's links and signals none of the pids that user names: in the deploy
# recipes the app's user owns instance/, logs/ or run/. So every folder above
# the project, the environment and its Python, everything in the project, and
# the environment's programs and packages must be root's and closed to others
# (a sticky folder above, such as /tmp, is fine).
refuse_strangers() {
    [ "$(id -u)" = 0 ] || return 0
    set --
    for path in "$PROJECT" "$ENV" "$(readlink -f -- "$ENV/bin/python")"; do
        while [ -n "$path" ]; do path=${path%/*} && set -- "$@" "${path:-/}"; done
    done
    found=$({
        find "$@" -maxdepth 0 ! -perm -1000 \( ! -user 0 -o -perm /022 \) -printf '%u %p\n'
        find -L "$PROJECT" \( -name .git -o -path "$ENV" \) -prune -o \( ! -user 0 -o -perm /022 \) -printf '%u %p\n'
        # uv's .lock is writable by all by design; nothing runs or imports it.
        find -L "$ENV" -maxdepth 4 -path "$ENV/.lock" -prune -o \( ! -user 0 -o -perm /022 \) -printf '%u %p\n'
    } 2>/dev/null | head -n 1)
    [ -n "$found" ] || return 0
    owner=${found%% *}
    if [ "$owner" = root ]; then
        fix="chmod go-w '${found#* }'"
    else
        fix="runuser -u $owner -- sh ${script##*/}, or chown root '${found#* }'"
    fi
    printf 'error: %s is open to %s, and root acts only on what no other user can change: %s\n' \
        "${found#* }" "$([ "$owner" = root ] && echo others || echo "$owner")" "$fix" >&2
    [ "${script##*/}" = status.sh ] && exit 4  # LSB: unknown
    exit 1
}

# Run one command of ops/ctl.py (start, stop, restart or status).
ctl() {
    find_python
    refuse_strangers
    # -I: no module of the script's folder, PYTHONPATH or user site comes first.
    exec "$ENV/bin/python" -I "$PROJECT/ops/ctl.py" "$@"
}
