"""gunicorn.conf.py: its logger builds access lines only for an access log."""

import datetime
import logging
import runpy

import pytest
from gunicorn.config import Config

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
    monkeypatch.setenv("_APP_SERVER_SECRET_KEY", "set by gunicorn.conf.py")
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
