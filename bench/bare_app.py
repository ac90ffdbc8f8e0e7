"""The baseline for bench/run.py: a bare Flask app with the same ping route."""

import os

from flask import Flask

app = Flask(__name__)
# With a key, Flask signs a session cookie per request, as every real app does.
app.secret_key = os.environ.get("BARE_SECRET_KEY")


@app.get("/health/ping")
def ping():
    """Answer as the starter's ping does."""
    return {"status": "ok", "app": "bare"}
