"""The entry point gunicorn and the flask command load: `wsgi:app`."""

import sys

from app import create_app
from app.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line that names the setting, where a traceback would bury it.
    sys.exit(f"{type(error).__name__}: {error}")
