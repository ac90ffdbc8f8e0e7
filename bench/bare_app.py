"""The baseline for bench/run.py: a bare Flask app with the same ping route."""

from flask import Flask

app = Flask(__name__)


@app.get("/health/ping")
def ping():
    """Answer as the starter's ping does."""
    return {"status": "ok", "app": "bare"}
