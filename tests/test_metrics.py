"""STATSD_HOST: gunicorn's statsd metrics, sent by the real server to a real
UDP listener."""

import contextlib
import re
import socket

from tests.conftest import wait_until


def test_requests_statuses_and_durations_reach_statsd(site):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(0.2)
        address = f"127.0.0.1:{statsd.getsockname()[1]}"
        (site.path / ".env").write_text(f"STATSD_HOST={address}\n")
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
