"""Request ids: one id per request, in every log line and in the response.

A client's (or nginx's) X-Request-ID is kept when it is short and made of safe
characters, so one id follows a request across services; otherwise a new one is
made. Read it with current_id(), e.g. to pass it on to another service.

A small WSGI middleware rather than Flask's request hooks, so that every
response carries the id, even one that fails outside a view.
"""

import re
import secrets

from flask import has_request_context, request

HEADER = "X-Request-ID"
SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Where the id is kept in the WSGI environ, the one place every layer can read.
ENVIRON_KEY = "app.request_id"


def init_app(app):
    """Give every request of app an id."""
    app.wsgi_app = RequestIdMiddleware(app.wsgi_app)


def current_id():
    """Return the id of the request being handled, or "-" outside a request."""
    if has_request_context():
        return request.environ.get(ENVIRON_KEY, "-")
    return "-"


class RequestIdMiddleware:
    """Take or make the id, store it in the environ and send it back."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if SAFE_ID.fullmatch(given) else secrets.token_hex(16)
        environ[ENVIRON_KEY] = request_id

        def start_with_id(status, headers, exc_info=None):
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start_with_id)
