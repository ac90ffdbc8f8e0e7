"""Logging to stderr, one line per record, with the request id on every line.

Under gunicorn, gunicorn.conf.py has already given the root logger a handler with
this same format (and start.sh sends stderr to logs/), so only the request id
filter is added here. Nothing rotates files inside the process: several workers
rotating one file lose lines. Rotate from outside (logrotate, then USR1).
"""

import logging

from app.request_id import current_id
from ops import settings

# Keep in step with the format in gunicorn.conf.py.
LOG_FORMAT = (
    "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"
)
HANDLER_NAME = "app"


class RequestIdFilter(logging.Filter):
    """Put the current request id (or "-") on each record as request_id."""

    def filter(self, record):
        record.request_id = current_id()
        return True


def init_logging():
    """Set up logging once per process: calling it again adds nothing."""
    root = logging.getLogger()
    if not logging.getLogger("gunicorn.error").handlers and not any(
        handler.name == HANDLER_NAME for handler in root.handlers
    ):
        handler = logging.StreamHandler()
        handler.name = HANDLER_NAME
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        root.setLevel(settings.read_one("LOG_LEVEL").upper())
    for handler in root.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
