"""LOG_FORMAT=json under a real gunicorn, in the foreground and under start.sh:
every line is one JSON object, access lines included."""

import json
import subprocess

import pytest

from ops import serverctl
from tests.conftest import wait_until

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
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def exercise(site, port):
    """The requests whose lines the tests look for."""
    assert site.get("/hello", port=port)[0] == 200
    assert site.get("/boom", port=port)[0] == 500
    assert site.get("/caf%C3%A9", port=port)[0] == 404


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


def test_json_lines_in_the_foreground(routes, free_port, tmp_path):
    port = free_port()
    env = dict(routes.env, PORT=str(port), LOG_FORMAT="json")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    # Files, not pipes: a full pipe would block gunicorn's logging.
    with out.open("w") as stdout, err.open("w") as stderr:
        server = subprocess.Popen(
            [serverctl.GUNICORN], cwd=routes.path, env=env, stdout=stdout, stderr=stderr
        )
    try:
        url = f"http://127.0.0.1:{port}/health/ping"
        wait_until(lambda: server.poll() is not None or serverctl.ping(url), "it", 60)
        exercise(routes, port)
    finally:
        server.terminate()
        server.wait(timeout=60)
    check(lines_of(out.read_text()) + lines_of(err.read_text()))


def test_json_lines_under_start_sh(routes):
    result = routes.run("start.sh", LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    exercise(routes, routes.port)
    assert routes.run("stop.sh").returncode == 0
    check(lines_of(routes.log()) + lines_of(routes.log("access")))


def test_a_bad_log_format_is_refused(site):
    result = site.run("start.sh", LOG_FORMAT="xml")
    assert result.returncode == 1
    assert result.stderr == (
        "error: LOG_FORMAT='xml' in the environment: use text or json\n"
    )
