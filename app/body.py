"""Request bodies sent in chunks (Transfer-Encoding: chunked) are held to
MAX_CONTENT_LENGTH as those with a Content-Length are: Flask alone would cut
such a body at the limit and hand the view the first part as if whole.
"""

from flask import request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge


def init_app(app):
    """Check every chunked request body of app before its view runs."""
    app.before_request(read_chunked_body)


def read_chunked_body():
    """Read a chunked body whole: 413 when it is larger than MAX_CONTENT_LENGTH,
    400 when its chunks are malformed. The view then reads it from memory."""
    if "chunked" not in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    limit = request.max_content_length
    try:
        data = request.get_data()  # stops at the limit
        # One byte more, read past Flask's limit, tells a body over it.
        over = limit is not None and len(data) >= limit
        over = over and request.environ["wsgi.input"].read(1)
    except HTTPException:
        raise
    except Exception as error:  # the server's own parse errors, e.g. gunicorn's
        raise BadRequest(f"The chunked request body is malformed: {error}") from None
    if over:
        raise RequestEntityTooLarge()
