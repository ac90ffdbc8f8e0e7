"""Every HTTP error the app answers is JSON with its true status code and the
request id, never a traceback."""

from flask import current_app
from werkzeug.exceptions import HTTPException, SecurityError

from app.request_id import current_id


def init_app(app):
    """Answer every HTTP error of app, 500 included, as JSON."""
    app.register_error_handler(HTTPException, json_error)


def json_error(error):
    """Turn an HTTPException into JSON, keeping its headers (405 keeps Allow).

    An unhandled exception reaches here as a 500 whose text is generic: Flask has
    already logged its traceback (with the request id), and nothing of it leaks.
    """
    response = error.get_response()
    message = error.description
    if isinstance(error, SecurityError) and "is not trusted" in message:
        message += " Add it to TRUSTED_HOSTS to serve it."  # the setting to change
    body = {
        "status": error.code,
        "error": error.name,
        "message": message,
        "request_id": current_id(),
    }
    response.data = current_app.json.dumps(body)
    response.content_type = "application/json"
    return response
