"""Log lines: one format for the app's lines and gunicorn's, text or JSON.

Under gunicorn, gunicorn.conf.py sets logging up with the classes here
(LOG_FORMAT=json picks JsonFormatter); under `flask` or in tests, init_logging
does, in text. Every line carries the request id. Nothing rotates files in the
process: several workers rotating one file lose lines. Rotate from outside
(logrotate, then USR1: deploy/logrotate.conf).
"""

import contextlib
import datetime
import json
import logging
import re
import sys

from flask import has_request_context, request

from app.request_id import ENVIRON_KEY

LINE = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"
# Control characters and line breaks (a request path with %0a would otherwise
# start a forged line); repr() writes them escaped.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Terminal colours (the development server's) are dropped: they forge nothing.
COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def init_logging():
    """Send the root logger's records to stderr in text, once per process
    (gunicorn has done so already when it runs the app)."""
    root = logging.getLogger()
    if not any(isinstance(handler, Handler) for handler in root.handlers):
        handler = Handler(sys.stderr)
        handler.setFormatter(Formatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def escaped(text):
    """Return text with its control characters and line breaks escaped."""
    return CONTROL.sub(lambda match: repr(match[0])[1:-1], COLOURS.sub("", text))


def request_id(record):
    """Return the id of the request record belongs to, or "-"."""
    if record.name == "gunicorn.access":  # logged after the response is sent
        return record.args["{x-request-id}o"]
    return request.environ.get(ENVIRON_KEY, "-") if has_request_context() else "-"


class Handler(logging.StreamHandler):
    """A stream handler that reports a line it could not write (a full disk)
    in one line. Python's own report copies the record's arguments, which for
    gunicorn's access lines hold every request header, cookies included."""

    def handleError(self, record):
        """Say that a line was lost, and why; never what it held."""
        with contextlib.suppress(Exception):  # stderr may be what fails
            sys.stderr.write(f"a log line was lost: {sys.exc_info()[1]}\n")


class Formatter(logging.Formatter):
    """Lines for people: time, level, pid, request id, logger and message,
    control characters in the message escaped; a traceback's lines follow,
    each indented, so that none can pass for a line of its own."""

    def __init__(self):
        super().__init__(LINE)

    def format(self, record):
        """Format record: its line, then its traceback's lines, indented."""
        first, *rest = super().format(record).split("\n")
        return "\n".join([first, *("\t" + escaped(line) for line in rest)])

    def formatMessage(self, record):
        """Format record's line, its message made safe to print on one line."""
        record.request_id = request_id(record)
        record.message = escaped(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, as log collectors expect: time (UTC, ISO
    8601), level, logger, message and request_id; for an access line also
    method, path, status, bytes, duration_ms and remote_addr; a traceback
    stays inside its object."""

    def format(self, record):
        """Return record as one line of JSON, non-ASCII kept readable."""
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id(record),
        }
        if record.name == "gunicorn.access":
            atoms = record.args
            entry |= {
                "method": atoms["m"],
                # WSGI hands the path over as latin-1: give back its UTF-8 text.
                "path": atoms["U"].encode("latin-1").decode("utf-8", "replace")
                + (f"?{atoms['q']}" if atoms["q"] else ""),
                "status": int(atoms["s"]),
                "bytes": int(atoms["B"] or 0),
                "duration_ms": int(atoms["M"]),
                "remote_addr": atoms["h"],
            }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        # JSON escapes the C0 controls; these others would break a line too.
        return CONTROL.sub(
            lambda c: f"\\u{ord(c[0]):04x}", json.dumps(entry, ensure_ascii=False)
        )
