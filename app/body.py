"""Request bodies are read whole before the view, and checked: 413 when one
is larger than MAX_CONTENT_LENGTH, sent in chunks (Transfer-Encoding:
chunked) as well as with a Content-Length; 400 when its chunks are malformed
or it ends before its Content-Length. Flask alone would hand the view the
first MAX_CONTENT_LENGTH bytes of a larger chunked body, or a cut-short body,
as if whole. The view then reads the body from memory, by request.get_data(),
.json, .form or .stream as usual.
"""

import io

from flask import request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge


def init_app(app):
    """Check every request body of app before its view runs."""
    app.before_request(read_body)


def read_body():
    """Read the request's body, if it has one, and refuse it when it is bad."""
    chunked = "chunked" in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    length = request.content_length or 0
    if not chunked and not length:
        return
    limit = request.max_content_length
    try:
        data = request.get_data()  # stops at the limit (413 beyond, with a length)
        # One byte more, past the limit, tells a chunked body over it.
        over = chunked and limit is not None and len(data) >= limit
        over = over and request.environ["wsgi.input"].read(1)
    except HTTPException:
        raise
    except Exception as error:  # the server's own parse errors, e.g. gunicorn's
        raise BadRequest(f"The chunked request body is malformed: {error}") from None
    if over:
        raise RequestEntityTooLarge()
    if not chunked and len(data) < length:
        raise BadRequest("The request body ended before its Content-Length.")
    # request.stream was read to get here: a view that reads it gets the body.
    request.environ["wsgi.input"] = io.BytesIO(data)
    request.environ["CONTENT_LENGTH"] = str(len(data))
    del request.stream  # Werkzeug's cached property: made again from the environ
