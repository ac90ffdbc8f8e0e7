"""Time the ping view in process, starter vs bare Flask app: no server, no network.

Run by hand from the project folder:

    python bench/in_process.py          # 7 rounds of 20,000 calls each

This isolates what the app itself costs per request (routing, request id,
session, JSON), which bench/run.py sees only through gunicorn and wrk.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from werkzeug.test import EnvironBuilder

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "bench")]

# Imported after the line above, which they need.
from bare_app import app as bare  # noqa: E402

from app import create_app  # noqa: E402


def microseconds_per_call(app, environ, calls):
    """Call app with a copy of environ calls times; return µs per call."""

    def start_response(status, headers, exc_info=None):
        pass

    began = time.perf_counter()
    for _ in range(calls):
        for _chunk in app(dict(environ), start_response):
            pass
    return (time.perf_counter() - began) / calls * 1e6


def main():
    """Alternate the two apps round by round; print medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    environ = EnvironBuilder(path="/health/ping", base_url="http://127.0.0.1/")
    environ = environ.get_environ()
    # A configured key, as the bare app has: no key file is made or read.
    apps = {"starter": create_app({"SECRET_KEY": "bench " * 8}), "bare": bare}
    times = {name: [] for name in apps}
    for _ in range(args.rounds):
        for name, app in apps.items():
            times[name].append(microseconds_per_call(app, environ, args.calls))
    for name, values in times.items():
        print(f"{name:8} {statistics.median(values):6.1f} µs per call")
    ratio = statistics.median(times["starter"]) / statistics.median(times["bare"])
    print(f"starter / bare: {ratio:.2f}")


if __name__ == "__main__":
    main()
