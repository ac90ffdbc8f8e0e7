"""Request ids: one id per request, in g, in every log line and in the response.

A client's (or nginx's) X-Request-ID is kept when it is short and made of safe
characters, so one id follows a request across services; otherwise a new one is made.
"""

import re
import secrets

from flask import g, request

HEADER = "X-Request-ID"
SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def init_app(app):
    """Give every request of app an id."""
    app.before_request(take_request_id)
    app.after_request(send_request_id)


def take_request_id():
    """Store the client's id in g when it is sane, else a new one."""
    given = request.headers.get(HEADER, "")
    g.request_id = given if SAFE_ID.fullmatch(given) else secrets.token_hex(16)


def send_request_id(response):
    """Echo the id in the response, where the access log can read it too."""
    if "request_id" in g:
        response.headers[HEADER] = g.request_id
    return response
