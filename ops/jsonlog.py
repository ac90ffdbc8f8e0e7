"""LOG_FORMAT=json: every line gunicorn and the app log is one JSON object, as
cluster log collectors expect. gunicorn.conf.py uses it; text stays the default.

Each object holds time (UTC, ISO 8601), level, logger, message and request_id;
an access line also method, path, status, bytes, duration_ms and remote_addr;
a traceback stays inside its object. Not logged, and so not JSON: what
gunicorn prints before it has read its settings or when the app fails to
import, Python's warnings, and what the app print()s.
"""

import datetime
import json
import logging


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON, non-ASCII kept readable."""

    def format(self, record):
        """Return record as a JSON object on one line."""
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        entry.update(getattr(record, "access", {}))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def access_fields(atoms):
    """Return the fields of an access line from gunicorn's atoms."""
    return {
        "method": atoms["m"],
        # WSGI hands the path over as latin-1: give back its UTF-8 text.
        "path": atoms["U"].encode("latin-1").decode("utf-8", "replace")
        + (f"?{atoms['q']}" if atoms["q"] else ""),
        "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
        "bytes": int(atoms["B"] or 0),
        "duration_ms": int(atoms["M"]),
        "remote_addr": atoms["h"],
        "request_id": atoms["{x-request-id}o"],
    }
