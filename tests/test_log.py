"""app/log.py: one text line format for the app's lines and gunicorn's, with
the request id, on which a message cannot start a line of its own; a handler
that reports a lost line without its secrets; and the log of a real server."""

import errno
import http.client
import io
import json
import logging
import os
import re
import subprocess
import sys
import unicodedata

import pytest

from app.log import Formatter, Handler, JsonFormatter
from app.request_id import ENVIRON_KEY
from tests.test_gunicorn_conf import foreground

TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def make_record(message="hello", *args, name="app", exc_info=None):
    """A record of logger name, at INFO."""
    return logging.LogRecord(
        name, logging.INFO, __file__, 1, message, args or None, exc_info
    )


def test_two_apps_add_one_handler(make_app):
    make_app()
    make_app()
    handlers = logging.getLogger().handlers
    assert sum(isinstance(handler, Handler) for handler in handlers) == 1


def test_a_line_has_time_level_pid_request_id_logger_and_message(make_app):
    app = make_app()
    with app.test_request_context(environ_overrides={ENVIRON_KEY: "r-1"}):
        line = Formatter().format(make_record("hello %s", "you"))
    assert re.fullmatch(rf"{TIME} INFO \[{os.getpid()}\] \[r-1\] app: hello you", line)


def test_outside_a_request_the_id_is_a_dash():
    assert Formatter().format(make_record()).endswith(" [-] app: hello")


def test_an_access_line_has_the_id_of_its_response():
    atoms = {"h": "127.0.0.1", "s": "200", "{x-request-id}o": "id-7"}
    record = make_record("%(h)s %(s)s", atoms, name="gunicorn.access")
    line = Formatter().format(record)
    assert line.endswith(" [id-7] gunicorn.access: 127.0.0.1 200")


def test_control_characters_in_a_message_are_escaped():
    forged = "/a\n2026-01-01 00:00:00,000 CRITICAL [1] [-] app: forged\r\x1b[2J\x00\x7f"
    line = Formatter().format(make_record("no page at %s", forged))
    assert "\n" not in line
    assert line.endswith(
        r" app: no page at /a\n2026-01-01 00:00:00,000 CRITICAL [1] [-] app: "
        r"forged\r\x1b[2J\x00\x7f"
    )


def test_terminal_colours_are_dropped_not_escaped():
    # flask run's warning and access lines come coloured; colours forge nothing.
    line = Formatter().format(make_record("\x1b[31m\x1b[1mWARNING\x1b[0m: dev"))
    assert line.endswith(" app: WARNING: dev")


def test_no_character_of_a_message_can_break_its_line():
    """Every control character (C0, DEL, C1), and every character at which
    Python's str.splitlines breaks a line (\\x85, \\u2028, \\u2029)."""
    characters = [chr(code) for code in range(0x3000)]
    controls = [c for c in characters if unicodedata.category(c) == "Cc"]
    breaks = [c for c in characters if len(f"a{c}b".splitlines()) > 1]
    line = Formatter().format(make_record("%s", "".join(controls + breaks)))
    assert len(line.splitlines()) == 1, line
    assert [c for c in controls + breaks if c in line] == []


def test_a_traceback_follows_on_indented_lines_none_can_forge():
    forged = "2026-12-03 17:50:54,043 INFO [1] [ok] app: user admin logged in\x1b"
    try:
        raise LookupError(f"no order named x\n{forged}")
    except LookupError:
        exc_info = sys.exc_info()
    line = Formatter().format(make_record("failed:\n%s", "x", exc_info=exc_info))
    first, *traceback = line.split("\n")
    assert first.endswith(r" app: failed:\nx")
    assert traceback[0] == "\tTraceback (most recent call last):"
    assert traceback[-1] == "\t" + forged.replace("\x1b", r"\x1b")
    assert all(line.startswith("\t") for line in traceback)


def test_json_lines_escape_every_line_break():
    line = JsonFormatter().format(make_record("%s", "a\u2028b\x85c\x9bd"))
    assert len(line.splitlines()) == 1
    assert json.loads(line)["message"] == "a\u2028b\x85c\x9bd"


# A line that cannot be written --------------------------------------------------


class Full(io.TextIOBase):
    """A stream on a full disk."""

    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")


SECRETS = {"{authorization}i": "Bearer TOPSECRET", "{cookie}i": "session=COOKIE"}


def access_record():
    """An access line as gunicorn logs it: its arguments hold every header."""
    atoms = {"h": "127.0.0.1", "r": "GET / HTTP/1.1", "s": "200", **SECRETS}
    atoms["{x-request-id}o"] = "id-1"
    return make_record('%(h)s "%(r)s" %(s)s', atoms, name="gunicorn.access")


def test_a_lost_line_is_one_line_without_its_arguments(capfd):
    handler = Handler(Full())
    handler.setFormatter(Formatter())
    handler.handle(access_record())
    assert capfd.readouterr() == (
        "",
        "a log line was lost: [Errno 28] No space left on device\n",
    )


def test_a_lost_line_on_a_failing_stderr_prints_nothing(capfd, monkeypatch):
    monkeypatch.setattr(sys, "stderr", Full())
    handler = Handler(sys.stderr)
    handler.setFormatter(Formatter())
    handler.handle(access_record())  # raises nothing
    monkeypatch.undo()
    assert capfd.readouterr() == ("", "")


def get(port, path, **headers):
    """Return the status of a GET of path, sent with headers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_server_whose_stdout_is_full_says_so_without_secrets(site, tmp_path):
    err = tmp_path / "stderr"
    with foreground(site, "/dev/full", err):  # every write fails: ENOSPC
        headers = {"Authorization": SECRETS["{authorization}i"]}
        headers["Cookie"] = SECRETS["{cookie}i"]
        assert get(site.port, "/health/ping", **headers) == 200
        assert get(site.port, "/nowhere", **headers) == 404
    stderr = err.read_text()
    lost = "a log line was lost: [Errno 28] No space left on device\n"
    assert stderr.count(lost) >= 2, stderr
    assert "TOPSECRET" not in stderr and "session=COOKIE" not in stderr
    assert "Traceback" not in stderr and "Logging error" not in stderr


# The log of a real server ---------------------------------------------------------

ROUTES = """

import logging

from flask import request

from app.errors import json_error


@app.errorhandler(404)
def not_found(error):
    logging.getLogger("app").warning("no page at %s", request.path)
    return json_error(error)


@app.get("/boom")
def boom():
    raise RuntimeError("boom\\nsecond line")
"""


@pytest.fixture
def noisy(site):
    """A site whose app logs the path of every page it does not have."""
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write(ROUTES)
    return site


def test_a_server_logs_one_format_with_the_request_ids(noisy):
    assert noisy.run("start.sh").returncode == 0
    assert get(noisy.port, "/nowhere", **{"X-Request-ID": "trace-42"}) == 404
    assert noisy.run("stop.sh").returncode == 0  # every line is written
    lines = noisy.log().splitlines()
    line = rf"{TIME} [A-Z]+ \[\d+\] \[(-|trace-42|[0-9a-f]{{32}})\] [\w.]+: "
    assert [text for text in lines if not re.match(line, text)] == []
    ours = [text.split("] ", 2)[2] for text in lines if "[trace-42]" in text]
    assert ours[0] == "app: no page at /nowhere"
    access = r'gunicorn\.access: 127\.0\.0\.1 "GET /nowhere HTTP/1\.1" 404 \d+ \d+ms'
    assert re.fullmatch(access, ours[1]), ours
    assert len(ours) == 2, ours
    assert any("] [-] gunicorn.error: Listening at: " in text for text in lines)


def test_a_request_cannot_forge_a_log_line(noisy):
    assert noisy.run("start.sh").returncode == 0
    forged = "2026-01-01 00:00:00,000 CRITICAL [1] [-] app: forged"
    path = "/nowhere%0a" + forged.replace(" ", "%20").replace("[", "%5B")
    path = path.replace("]", "%5D") + "%0d%1b%5B2J"
    assert get(noisy.port, path) == 404
    assert get(noisy.port, "/boom") == 500
    assert noisy.run("stop.sh").returncode == 0
    log = noisy.log()
    lines = log.split("\n")
    assert [line for line in lines if line.startswith("2026-01-01")] == []
    assert "\r" not in log and "\x1b" not in log
    (line,) = [line for line in lines if "no page at" in line]
    assert line.endswith(rf" app: no page at /nowhere\n{forged}\r\x1b[2J")
    # A traceback stays on lines of its own.
    assert "ERROR [" in log and "app: Exception on /boom [GET]\n\tTraceback (" in log
    assert "\n\tRuntimeError: boom\n\tsecond line\n" in log


def test_the_log_level_applies_to_gunicorns_lines_and_the_apps(noisy):
    result = noisy.run("start.sh", LOG_LEVEL="warning")
    assert result.returncode == 0, result.stderr
    assert get(noisy.port, "/nowhere") == 404
    assert noisy.run("stop.sh").returncode == 0
    log = noisy.log()
    assert " WARNING [" in log and "app: no page at /nowhere" in log
    assert '"GET /nowhere HTTP/1.1" 404' in log, "ACCESS_LOG says, not LOG_LEVEL"
    info = [line for line in log.splitlines() if " INFO [" in line]
    assert [line for line in info if "gunicorn.access" not in line] == []


def test_reopen_signals_only_our_servers(started, free_port):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        # USR1 would end the stranger: a pidfile naming it must not lead to it.
        (started.path / "run" / f"app-{free_port()}.pid").write_text(
            f"{stranger.pid}\n"
        )
        result = subprocess.run(
            [sys.executable, "ops/ctl.py", "reopen"],
            cwd=started.path,
            env=started.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert stranger.poll() is None, "a process that is not ours was signalled"
        assert started.get()[0] == 200
    finally:
        stranger.kill()
        stranger.wait()
