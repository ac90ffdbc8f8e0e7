"""app/log.py: one stderr handler per process, one line format, checked level."""

import logging

import pytest

from app.config import ConfigError
from app.log import HANDLER_NAME, LOG_FORMAT, RequestIdFilter
from app.request_id import ENVIRON_KEY


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
    with pytest.raises(ConfigError, match="LOG_LEVEL='LOUD'"):
        make_app()
