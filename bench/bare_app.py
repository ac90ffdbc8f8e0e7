"""The baseline for bench/run.py: a bare Flask app with the same ping route."""

from flask import Flask

app = Flask(__name__)
# Every deployed app has a key, and then pays for Flask's session on each
# request: the starter does.
app.secret_key = "bench " * 8


@app.get("/health/ping")
def ping():
    """Answer as the starter's ping does."""
    return {"status": "ok", "app": "bare"}
