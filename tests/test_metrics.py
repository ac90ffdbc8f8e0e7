"""STATSD_HOST: gunicorn's statsd metrics, sent by the real server to a real
UDP listener."""

import contextlib
import os
import re
import runpy
import socket
import sys
import types

from tests.conftest import PROJECT, wait_until


def test_requests_statuses_and_durations_reach_statsd(site):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(0.2)
        port = statsd.getsockname()[1]
        (site.path / ".env").write_text(f"STATSD_HOST=127.0.0.1\nSTATSD_PORT={port}\n")
        assert site.run("start.sh").returncode == 0
        assert site.get("/nowhere")[0] == 404
        lines = []

        def arrived():
            with contextlib.suppress(TimeoutError):
                lines.extend(statsd.recv(4096).decode().splitlines())
            seen = "\n".join(lines)
            return ".request.status.404:" in seen and ".gunicorn.workers:" in seen

        wait_until(arrived, "the metrics of a 404 did not arrive")
        site.run("stop.sh")
    # The folder "my app 应用": a name statsd accepts.
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", site.path.name)
    assert prefix == "my_app___"
    assert f"{prefix}.gunicorn.requests:1|c|@1.0" in lines
    assert f"{prefix}.gunicorn.request.status.200:1|c|@1.0" in lines  # start.sh's probe
    assert f"{prefix}.gunicorn.request.status.404:1|c|@1.0" in lines
    assert f"{prefix}.gunicorn.workers:2|g" in lines
    durations = [line for line in lines if ".gunicorn.request.duration:" in line]
    assert durations and all(re.fullmatch(r"\S+:[\d.]+\|ms", d) for d in durations)


def test_a_statsd_server_that_is_down_costs_a_line_a_minute_not_one_a_request(site):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # closed again: nothing listens there
    (site.path / ".env").write_text(f"STATSD_HOST=127.0.0.1\nSTATSD_PORT={port}\n")
    assert site.run("start.sh").returncode == 0
    for _ in range(30):
        assert site.get()[0] == 200
    site.run("stop.sh")
    # At most one in each process: the master and its two workers.
    assert 1 <= site.log().count("Error sending message to statsd") <= 3


def test_an_address_gunicorn_cannot_use_is_said_in_the_log(monkeypatch):
    monkeypatch.setenv("STATSD_HOST", "statsd.invalid")
    monkeypatch.setitem(sys.modules, "server_settings", types.ModuleType("fresh"))
    monkeypatch.setenv("DRAIN_FILE", "")  # what the file sets in this process
    umask = os.umask(0o022)
    try:
        conf = runpy.run_path(str(PROJECT / "gunicorn.conf.py"), run_name="test")
    finally:
        os.umask(umask)
    warnings = []
    log = types.SimpleNamespace(sock=None, warning=lambda *args: warnings.append(args))
    conf["when_ready"](types.SimpleNamespace(log=log, LISTENERS=[]))
    said = [args for args in warnings if args[0].startswith("no metrics")]
    assert said == [("no metrics: STATSD_HOST %s does not resolve", "statsd.invalid")]
