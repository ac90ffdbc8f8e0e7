"""What the server tells probes, under the real gunicorn: liveness stays true
while every worker thread is busy, and a readiness check that hangs holds
neither the probe nor a stop."""

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request

from tests.conftest import PROJECT, wait_until


def liveness_check():
    """The image's HEALTHCHECK command (deploy/Containerfile), run by this Python."""
    containerfile = (PROJECT / "deploy" / "Containerfile").read_text()
    command = json.loads(re.search(r"(?m)^\s+CMD (\[.*\])$", containerfile)[1])
    assert command[0] == "python3"
    return [sys.executable, *command[1:]]


def add_code(site, *lines):
    """Append lines to the copy's wsgi.py, where `app` is the app."""
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("".join(line + "\n" for line in lines))


def answers(url):
    """Say whether url answers within half a second."""
    try:
        return urllib.request.urlopen(url, timeout=0.5).status == 200
    except OSError:
        return False


def test_liveness_passes_while_every_worker_thread_is_busy(site):
    add_code(
        site,
        "import time",
        "app.add_url_rule('/slow', 'slow', lambda: time.sleep(6) or 'done')",
    )
    assert site.run("start.sh").returncode == 0
    url = f"http://127.0.0.1:{site.port}"
    # 2 workers x 4 threads: 12 slow requests leave no thread free.
    slow = [
        threading.Thread(
            target=lambda: urllib.request.urlopen(f"{url}/slow", timeout=30).read()
        )
        for _ in range(12)
    ]
    for request in slow:
        request.start()
    try:
        # An HTTP probe now waits for a thread, and would fail.
        wait_until(lambda: not answers(f"{url}/health/ping"), "threads stayed free")
        env = {"PORT": str(site.port)}
        for _ in range(5):
            began = time.monotonic()
            check = subprocess.run(
                liveness_check(), env=env, capture_output=True, timeout=10
            )
            assert check.returncode == 0, check.stderr
            assert time.monotonic() - began < 4  # the HEALTHCHECK's --timeout is 5 s
    finally:
        for request in slow:
            request.join(30)
    assert site.run("stop.sh").returncode == 0
    check = subprocess.run(liveness_check(), env=env, capture_output=True, timeout=10)
    assert check.returncode != 0, "a stopped server must fail it"


def test_a_hung_readiness_check_holds_neither_the_probe_nor_a_stop(site):
    (site.path / ".env").write_text("FLASK_HEALTH_CHECK_TIMEOUT=0.5\n")
    add_code(
        site,
        "import threading",
        "from app import health",
        "health.add_check(app, 'database', threading.Event().wait)",
    )
    assert site.run("start.sh").returncode == 0
    for _ in range(3):
        began = time.monotonic()
        code, body = site.get("/health/ready")
        assert time.monotonic() - began < 2
        assert (code, json.loads(body)) == (
            503,
            {"status": "unavailable", "failing": ["database"]},
        )
    assert "readiness check database gave no answer within 0.5 s" in site.log()
    began = time.monotonic()
    assert site.run("stop.sh").returncode == 0
    # Not held for the graceful timeout (30 s) by the check's thread.
    assert time.monotonic() - began < 10
    wait_until(lambda: site.servers() == [], "the server did not go")
