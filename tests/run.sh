#!/bin/sh
# Set up and run every check: install requirements-dev.txt into the active
# virtual environment (or into venv/, made if missing), then run ruff, mypy,
# ShellCheck on every *.sh, and pytest. Arguments go to pytest, e.g.
# sh tests/run.sh -k config
set -eu
cd -- "$(dirname -- "$0")/.."

if [ -n "${VIRTUAL_ENV:-}" ]; then
    bin="$VIRTUAL_ENV/bin"
else
    [ -x venv/bin/python ] || python3 -m venv venv
    bin="venv/bin"
fi

# The tool of requirements-dev.txt that needs package $1 (name==version): its
# "# via" lines, followed up to a package that nothing else needs.
tool_of() {
    awk -v want="${1%%==*}" '
        /^[A-Za-z0-9._-]+==/ { name = tolower($1); sub(/==.*/, "", name); next }
        /^    # via [^ ]/ { parent[name] = $3; next }
        /^    #   [^ ]/ { if (!(name in parent)) parent[name] = $2 }
        END { name = tolower(want); while (name in parent && hops++ < 50) name = parent[name]; print name }
    ' requirements-dev.txt
}

# Install the tools unless they all are already: that check needs no network.
# With no way to the index, say in one line which tool is missing.
# An environment with no pip is uv's: `uv run` has synced it from uv.lock.
if ! "$bin/python" -c "import pip" 2>/dev/null; then
    :
elif ! missing=$("$bin/python" -m pip install --no-index -r requirements-dev.txt 2>&1 >/dev/null); then
    missing=$(printf '%s\n' "$missing" | sed -n 's/.*No matching distribution found for //p')
    echo "installing the tools of requirements-dev.txt into ${bin%/bin} (the first time: about 20 s)..."
    if ! out=$("$bin/python" -m pip install -q --retries 1 --timeout "${PIP_DEFAULT_TIMEOUT:-15}" -r requirements-dev.txt 2>&1); then
        tool=$(tool_of "$missing")
        [ "$tool" = "${missing%%==*}" ] || missing="$tool (it needs $missing)"
        case "$out" in
        *Retrying*) printf 'error: %s of requirements-dev.txt is not installed and the package index cannot be reached: %s\n' \
            "${missing:-a tool}" "connect, or install from wheels (docs/offline.md)" >&2 ;;
        *) printf '%s\n' "$out" >&2 ;;
        esac
        exit 1
    fi
fi

"$bin/ruff" check .
"$bin/ruff" format --check .
"$bin/mypy"  # what it checks, and how strictly: pyproject.toml
git ls-files -z '*.sh' .ci/run | xargs -0 "$bin/shellcheck"
# Four test files at a time (pytest-xdist; each file in one process, for its
# shared fixtures): the lifecycle tests mostly wait on gunicorn and podman.
"$bin/python" -m pytest -n 4 --dist loadfile "$@"
