"""The operations layer and the app stay small enough to read in ten minutes:
code lines, without blank, comment and docstring lines. Issue 22 sets 400 for
the server side and 300 for the app; until the code meets them, the ceilings
here are its size now: a change that raises one says why."""

import ast
import io
import tokenize

from tests.conftest import PROJECT

SERVER_SIDE = ["gunicorn.conf.py", "ops/*.py", "ops/*.sh", "*.sh"]
APP_SIDE = ["app/*.py", "config.py", "wsgi.py"]


def code_lines(path):
    """Count the lines of path that hold code: for Python, as tokenize sees
    them, docstrings left out; for sh, lines that are not blank or comments."""
    text = path.read_text()
    if path.suffix != ".py":
        return sum(1 for line in text.splitlines() if line.strip()[:1] not in ("", "#"))
    docstrings = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            docstrings |= set(range(first.lineno, first.end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT}
    skip |= {tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in skip:
            lines |= set(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def size(patterns):
    """Return {file: code lines} for the files matching patterns."""
    files = sorted({p for pattern in patterns for p in PROJECT.glob(pattern)})
    return {str(path.relative_to(PROJECT)): code_lines(path) for path in files}


# Raised from 700 and 420 by the checks root makes before it acts (helper,
# deep scan), the traceback's indent, errors naming their file and line, and
# one spelling of the log path and of "the same process"; lowered by the
# busy port's holder no longer named (ss); then raised by issue 23: readiness
# checks with deadlines, checked (app, 56), STATSD_HOST and STATSD_PORT with a
# quiet log while statsd is down (server, 35), the warning of connections
# opened while the app loads (server, 17); and by issue 24: a refused host
# names TRUSTED_HOSTS (app, 3), code that mypy can follow (server 14, app 3),
# terminal colours dropped from log lines (app, 1);
# targets: 400 and 300.
SERVER_CEILING, APP_CEILING = 779, 484


def test_the_server_side_stays_under_its_ceiling():
    sizes = size(SERVER_SIDE)
    assert sum(sizes.values()) <= SERVER_CEILING, sizes


def test_the_app_side_stays_under_its_ceiling():
    sizes = size(APP_SIDE)
    assert sum(sizes.values()) <= APP_CEILING, sizes
