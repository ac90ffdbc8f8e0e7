"""Serve the starter's app under gunicorn and its peers (granian, uWSGI,
waitress), each with 2 processes or the nearest equivalent, and load three
routes at 32 and 256 connections with wrk: requests/s and p99 latency,
medians of the rounds, and ratios to gunicorn.

The peers live in an environment of their own, never the app's:

    python3 -m venv ~/.cache/starter-bench/venv
    ~/.cache/starter-bench/venv/bin/pip install -r bench/peers.txt
    ~/.cache/starter-bench/venv/bin/python bench/peers.py --rounds 3

Load goes to 127.0.0.1 only; wrk shares the machine with the server.
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROUTES = {
    "ping": "/health/ping",
    "json 1 ms": "/bench/json",
    "wait 20 ms": "/bench/wait",
}
CONNECTIONS = (32, 256)


def servers(port):
    """Return {name: command}: each server with 2 processes (4 threads each
    where it has threads), the access log off."""
    address = f"127.0.0.1:{port}"
    return {
        # The starter's own settings (gunicorn.conf.py): gthread 2 x 4.
        "gunicorn": [BIN / "gunicorn", "peer_app:app"],
        "granian": [BIN / "granian", "--interface", "wsgi", "--workers", "2"]
        + ["--blocking-threads", "4", "--port", str(port), "peer_app:app"],
        "uWSGI": [BIN / "uwsgi", "--http-socket", address, "--master"]
        + ["--processes", "2", "--threads", "4", "--module", "peer_app:app"]
        + ["--disable-logging", "--die-on-term", "--lazy-apps"],
        # One process only: waitress has threads, no workers.
        "waitress": [BIN / "waitress-serve", "--listen", address, "--threads", "8"]
        + ["peer_app:app"],
    }


def free_port():
    """Return a port that is free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url, server, timeout=30):
    """Wait until url answers 200; fail if server exits or after timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"error: the server exited with code {server.returncode}")
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"error: {url} did not answer in {timeout} s")


def load(url, connections, seconds):
    """Run wrk on url; return (requests/s, p99 latency in ms)."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return rate, float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def measure(name, seconds, results):
    """Start one server, load every route at every connection count, stop it."""
    port = free_port()
    command = servers(port)[name]
    env = dict(
        os.environ,
        PORT=str(port),
        ACCESS_LOG="off",
        LOG_LEVEL="warning",
        FLASK_SECRET_KEY="bench " * 8,
        PYTHONPATH=f"{PROJECT / 'bench'}{os.pathsep}{PROJECT}",
    )
    server = subprocess.Popen(
        [str(word) for word in command],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/health/ping", server)
        for route, path in ROUTES.items():
            for connections in CONNECTIONS:
                key = (name, route, connections)
                url = f"http://127.0.0.1:{port}{path}"
                results.setdefault(key, []).append(load(url, connections, seconds))
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


def main():
    """Measure, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    options = parser.parse_args()
    results = {}
    for number in range(options.rounds):
        print(f"round {number + 1}/{options.rounds}", file=sys.stderr)
        for name in servers(0):
            measure(name, options.seconds, results)
    header = f"{'server':10} {'route':11} {'conns':>5} {'req/s':>8} {'ratio':>6}"
    print(f"{header} {'p99 ms':>8}")
    for (name, route, connections), runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        p99 = statistics.median(p for _, p in runs)
        base = statistics.median(r for r, _ in results["gunicorn", route, connections])
        print(
            f"{name:10} {route:11} {connections:>5} {rate:>8,.0f} "
            f"{rate / base:>6.2f} {p99:>8.1f}"
        )


if __name__ == "__main__":
    main()
