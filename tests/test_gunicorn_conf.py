"""gunicorn.conf.py: access lines only where an access log is wanted."""

import datetime
import logging
import runpy
import subprocess
import sys
import time

import pytest
from gunicorn.config import Config

from ops import serverctl
from tests.conftest import PROJECT


class Response:
    status = "200 OK"
    sent = 2
    headers = [("X-Request-ID", "id-1")]


ENVIRON = {
    "REQUEST_METHOD": "GET",
    "RAW_URI": "/health/ping",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
}


@pytest.fixture
def make_logger(monkeypatch):
    """Return a function that makes the conf's Logger; undo what it set after."""
    loggers = [logging.getLogger(n) for n in ("gunicorn.error", "gunicorn.access")]
    kept = {
        logger: (logger.handlers[:], logger.level, logger.propagate)
        for logger in loggers
    }
    conf = runpy.run_path(str(PROJECT / "gunicorn.conf.py"))

    def make(**settings):
        config = Config()
        for name, value in settings.items():
            config.set(name, value)
        return conf["Logger"](config)

    yield make
    for logger, (handlers, level, propagate) in kept.items():
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


# Any logconfig_dict makes gunicorn build access lines; this one, being
# incremental and empty, leaves the logging of the tests alone.
HARMLESS_LOGCONFIG = {"incremental": True, "root": {}, "loggers": {}, "handlers": {}}


def test_no_access_line_is_built_without_an_access_log(make_logger, monkeypatch):
    logger = make_logger(logconfig_dict=HARMLESS_LOGCONFIG)

    def fail(*args):
        raise AssertionError("an access line was built for no access log")

    monkeypatch.setattr(logger, "atoms", fail)
    logger.access(Response(), [], ENVIRON, datetime.timedelta(milliseconds=3))


def test_an_access_log_gets_its_line(make_logger, tmp_path):
    path = tmp_path / "access.log"
    logger = make_logger(
        accesslog=str(path), access_log_format='"%(r)s" %(s)s %({x-request-id}o)s'
    )
    logger.access(Response(), [], ENVIRON, datetime.timedelta(milliseconds=3))
    assert path.read_text() == '"GET /health/ping HTTP/1.1" 200 id-1\n'


@pytest.mark.parametrize("access_log", ["on", "off"])
def test_in_the_foreground_access_lines_go_to_stdout(
    project, python_env, free_port, access_log
):
    """As the systemd unit runs it: plain gunicorn, the journal takes stdout."""
    port = free_port()
    env = dict(python_env, PORT=str(port), ACCESS_LOG=access_log)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not serverctl.ping(f"http://127.0.0.1:{port}/health/ping"):
            assert time.monotonic() < deadline, "gunicorn did not answer in 20 s"
            assert server.poll() is None, "gunicorn exited"
            time.sleep(0.05)
    finally:
        server.terminate()
        stdout = server.communicate(timeout=20)[0]
    logged = '"GET /health/ping HTTP/1.0" 200' in stdout
    assert logged == (access_log == "on"), stdout
