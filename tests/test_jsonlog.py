"""LOG_FORMAT=json: app/log.py's JsonFormatter, and a real gunicorn in the
foreground and under start.sh: every line is one JSON object, access lines
included."""

import json
import logging
import sys

import pytest

from app.log import JsonFormatter
from app.request_id import ENVIRON_KEY
from tests.test_gunicorn_conf import foreground


def make_record(message, *args, name="app", exc_info=None):
    """A record of logger name, at WARNING."""
    return logging.LogRecord(
        name, logging.WARNING, __file__, 1, message, args or None, exc_info
    )


def test_a_line_is_one_object_with_time_level_logger_message_and_id(make_app):
    app = make_app()
    record = make_record("你好, %s\n\x1b[2J", '"quoted" \\ back')
    with app.test_request_context(environ_overrides={ENVIRON_KEY: "r-1"}):
        line = JsonFormatter().format(record)
    assert "\n" not in line and "\x1b" not in line
    assert "你好" in line, "non-ASCII stays readable"
    entry = json.loads(line)
    assert entry.pop("time").endswith("+00:00")
    assert entry == {
        "level": "WARNING",
        "logger": "app",
        "message": '你好, "quoted" \\ back\n\x1b[2J',
        "request_id": "r-1",
    }


def test_outside_a_request_the_id_is_a_dash():
    entry = json.loads(JsonFormatter().format(make_record("hello")))
    assert entry["request_id"] == "-"


@pytest.mark.parametrize(
    ("path", "query", "sent", "shown", "size"),
    [
        ("/caf\xc3\xa9", "", 15, "/café", 15),  # WSGI's latin-1 for UTF-8
        ("/search", "q=1", None, "/search?q=1", 0),
    ],
)
def test_an_access_line_has_the_fields_of_its_request(path, query, sent, shown, size):
    atoms = {"m": "GET", "U": path, "q": query, "s": "200", "B": sent, "M": 3}
    atoms |= {"h": "10.0.0.1", "{x-request-id}o": "id-7"}
    record = make_record("%(m)s %(U)s", atoms, name="gunicorn.access")
    entry = json.loads(JsonFormatter().format(record))
    del entry["time"]
    assert entry == {
        "level": "WARNING",
        "logger": "gunicorn.access",
        "message": f"GET {path}",
        "request_id": "id-7",
        "method": "GET",
        "path": shown,
        "status": 200,
        "bytes": size,
        "duration_ms": 3,
        "remote_addr": "10.0.0.1",
    }


def test_a_traceback_stays_inside_its_object():
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        record = make_record("failed", exc_info=sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed"
    assert entry["traceback"].startswith("Traceback (most recent call last):\n")
    assert entry["traceback"].endswith("RuntimeError: boom\nsecond line")


# A real server ---------------------------------------------------------------------

ROUTES = """
import logging


@app.get("/hello")
def hello():
    logging.getLogger("app").warning("你好, \\"quoted\\" \\\\ back")
    return {"hello": True}


@app.get("/boom")
def boom():
    raise RuntimeError("boom\\nsecond line")
"""


def lines_of(text):
    """Parse every non-empty line of text as JSON (fails on one that is not)."""
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def exercise(site):
    """The requests whose lines the tests look for."""
    assert site.get("/hello")[0] == 200
    assert site.get("/boom")[0] == 500
    assert site.get("/caf%C3%A9")[0] == 404


def check(entries):
    """The lines hold what LOG_FORMAT=json promises."""
    for entry in entries:
        assert {"time", "level", "logger", "message", "request_id"} <= set(entry)
        assert entry["time"].endswith("+00:00")
    hello = [e for e in entries if e["message"].startswith("你好")]
    assert hello and hello[0]["message"] == '你好, "quoted" \\ back'
    assert len(hello[0]["request_id"]) == 32
    (boom,) = [e for e in entries if "traceback" in e]
    assert "RuntimeError: boom\nsecond line" in boom["traceback"]
    (access,) = [e for e in entries if e.get("path") == "/hello"]
    assert access["method"] == "GET" and access["status"] == 200
    assert access["request_id"] == hello[0]["request_id"]
    assert {"bytes", "duration_ms", "remote_addr"} <= set(access)
    assert any(e["logger"] == "gunicorn.error" for e in entries)
    assert any(e.get("path") == "/café" for e in entries), "UTF-8 paths as text"


@pytest.fixture
def routes(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write(ROUTES)
    return site


def test_json_lines_in_the_foreground(routes, tmp_path):
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with foreground(routes, out, err, LOG_FORMAT="json"):
        exercise(routes)
    access, rest = lines_of(out.read_text()), lines_of(err.read_text())
    assert {entry["logger"] for entry in access} == {"gunicorn.access"}
    assert "gunicorn.access" not in {entry["logger"] for entry in rest}
    check(access + rest)


def test_json_lines_under_start_sh(routes):
    result = routes.run("start.sh", LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    exercise(routes)
    assert routes.run("stop.sh").returncode == 0
    check(lines_of(routes.log()))


def test_a_bad_log_format_is_refused(site):
    result = site.run("start.sh", LOG_FORMAT="xml")
    assert result.returncode == 1
    assert result.stderr == (
        "error: LOG_FORMAT='xml' in the environment: use one of text, json\n"
    )
    assert site.servers() == []
