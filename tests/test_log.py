"""app/log.py: one stderr handler per process, one line format, checked level;
and the logs of a real server, reopened after rotation by our servers only."""

import http.client
import logging
import subprocess
import sys

import pytest

from app.log import HANDLER_NAME, LOG_FORMAT, RequestIdFilter
from app.request_id import ENVIRON_KEY
from ops.settings import SettingError


def our_handlers():
    return [h for h in logging.getLogger().handlers if h.name == HANDLER_NAME]


def test_two_apps_add_one_handler(make_app):
    make_app()
    make_app()
    assert len(our_handlers()) == 1
    assert sum(isinstance(f, RequestIdFilter) for f in our_handlers()[0].filters) == 1


def test_a_line_has_time_level_pid_request_id_and_logger(make_app):
    app = make_app()
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "hello", None, None)
    with app.test_request_context(environ_overrides={ENVIRON_KEY: "r-1"}):
        RequestIdFilter().filter(record)
    line = logging.Formatter(LOG_FORMAT).format(record)
    assert line.endswith(f" INFO [{record.process}] [r-1] app: hello")


def test_outside_a_request_the_id_is_a_dash():
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "hello", None, None)
    RequestIdFilter().filter(record)
    assert record.request_id == "-"


def test_a_bad_log_level_is_an_error(make_app, monkeypatch):
    for handler in our_handlers():
        logging.getLogger().removeHandler(handler)
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(
        SettingError, match="LOG_LEVEL='loud' in the environment: use one of"
    ):
        make_app()


def test_a_server_logs_one_format_and_the_request_ids(started):
    connection = http.client.HTTPConnection("127.0.0.1", started.port, timeout=5)
    connection.request("GET", "/health/ping", headers={"X-Request-ID": "trace-42"})
    assert connection.getresponse().status == 200
    connection.close()
    assert started.run("stop.sh").returncode == 0
    log = started.log()
    assert " INFO [" in log and "] [-] gunicorn.error: Listening at" in log
    access = started.log("access")
    assert '"GET /health/ping HTTP/1.1" 200' in access
    assert "trace-42" in access


def test_reopen_logs_signals_only_our_servers(started, free_port):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        # USR1 would end the stranger: a stale record must not lead to it.
        started.forge_record(stranger.pid, port=free_port())
        ctl = [sys.executable, str(started.path / "ops" / "serverctl.py")]
        result = subprocess.run(
            [*ctl, "reopen-logs"], env=started.env, capture_output=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        assert stranger.poll() is None, "a process that is not ours was signalled"
        assert started.get()[0] == 200
    finally:
        stranger.kill()
        stranger.wait()


def test_health_probes_can_be_left_out_of_the_access_log(site):
    result = site.run("start.sh", HEALTH_ACCESS_LOG="off")
    assert result.returncode == 0, result.stderr
    assert site.get()[0] == 200
    assert site.get("/nowhere")[0] == 404
    assert site.run("stop.sh").returncode == 0  # the access lines are written
    access = site.log("access")
    assert '"GET /nowhere HTTP/1.1" 404' in access
    assert "/health/" not in access
