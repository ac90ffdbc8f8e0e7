"""gunicorn.conf.py: access lines only where an access log is wanted, and a
HUP that cannot stop the server."""

import datetime
import logging
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time

import pytest
from gunicorn.config import Config

from ops import serverctl, settings
from tests.conftest import PROJECT, wait_until


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
    monkeypatch.setattr(settings, "in_force", None)  # the conf sets it
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
        url = f"http://127.0.0.1:{port}/health/ping"
        wait_until(lambda: answers_or_exits(server, url), "gunicorn to answer", 120)
        assert server.poll() is None, "gunicorn exited"
    finally:
        server.terminate()
        # A stop is bounded by GRACEFUL_TIMEOUT (30 s): a worker that got the
        # TERM while it booted ignores it until the master kills it then.
        stdout = server.communicate(timeout=45)[0]
    logged = '"GET /health/ping HTTP/1.0" 200' in stdout
    assert logged == (access_log == "on"), stdout


def test_a_hup_with_a_broken_env_file_keeps_the_server(project, python_env, free_port):
    """Plain gunicorn, as systemd's reload signals it: a HUP reads .env again."""
    port = free_port()
    server = subprocess.Popen(
        [serverctl.GUNICORN],
        cwd=project,
        env=dict(python_env, PORT=str(port)),
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/health/ping"
    try:
        wait_until(lambda: answers_or_exits(server, url), "gunicorn to answer", 120)
        assert server.poll() is None, "gunicorn exited"
        (project / ".env").write_text("WEB_CONCURRENCY=many\n")
        server.send_signal(signal.SIGHUP)
        time.sleep(2)  # a master that reads the file again and fails is gone by then
        assert server.poll() is None, "the HUP stopped gunicorn"
        assert serverctl.ping(url)
    finally:
        server.terminate()
        stderr = server.communicate(timeout=45)[1]
    assert "warning: WEB_CONCURRENCY='many' in " in stderr
    assert "; keeping the settings in force" in stderr


def test_a_hup_after_run_and_logs_were_removed_keeps_the_server(started):
    pid = started.pid()
    for folder in "run", "logs":  # the record gunicorn.conf.py reads, the logs
        shutil.rmtree(started.path / folder)
    os.kill(pid, signal.SIGHUP)
    wait_until(started.pidfile().exists, "gunicorn to write its pidfile again")
    time.sleep(1)  # a master that fails the HUP is gone by then
    assert started.servers() == [pid]
    assert started.get()[0] == 200
    assert "Booting worker" in started.log(), "the log was not opened again"


def answers_or_exits(server, url):
    """Say whether the server at url answers, or its process has exited."""
    return server.poll() is not None or serverctl.ping(url)
