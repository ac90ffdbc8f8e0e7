"""Fixtures: apps isolated from the developer's own instance folder, .env and
environment, and copies of the project for tests that run the real scripts."""

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import create_app

PROJECT = Path(__file__).resolve().parent.parent
# A shell ignores SIGINT in what it starts in the background (`sh tests/run.sh &`),
# and every process started from here would inherit that: the Ctrl-C tests need it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
SERVER_VARIABLES = (
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "GRACEFUL_TIMEOUT",
    "START_TIMEOUT",
    "ACCESS_LOG",
    "HEALTH_ACCESS_LOG",
    "DRAIN_SECONDS",
    "DRAIN_FILE",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run every test without FLASK_* or server variables."""
    for name in list(os.environ):
        if name.startswith("FLASK_") or name in SERVER_VARIABLES:
            monkeypatch.delenv(name)


@pytest.fixture
def instance(tmp_path):
    """An empty instance folder of the test's own."""
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture
def env_file(tmp_path):
    """The path of a .env of the test's own; absent until the test writes it."""
    return tmp_path / ".env"


@pytest.fixture
def make_app(instance, env_file):
    """A function that creates an app from the test's own instance folder and .env."""

    def make(test_config=None):
        return create_app(test_config, instance_path=str(instance), env_file=env_file)

    return make


@pytest.fixture
def app(make_app):
    """An app with a configured secret key."""
    return make_app({"SECRET_KEY": "test key"})


@pytest.fixture
def client(app):
    """A test client for app."""
    return app.test_client()


def pytest_collection_modifyitems(items):
    """Mark the tests that run a copy of the project (scripts, gunicorn, flask)
    as lifecycle tests: `pytest -m "not lifecycle"` runs the others, in seconds."""
    for item in items:
        if "project" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lifecycle)


@pytest.fixture
def project(tmp_path):
    """A copy of the project's files in a folder whose path has a space and Chinese."""
    return copy_project(tmp_path / "my app 应用")


def copy_project(copy):
    """Copy the project's files, as a clone has them, into the folder copy."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, files.split("\0")):
        if (PROJECT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, copy / name)
    return copy


@pytest.fixture
def free_port():
    """A function that returns a TCP port nothing listens on, on 127.0.0.1."""

    def pick():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    return pick


@pytest.fixture
def python_env():
    """The environment scripts run in: this test run's Python is the active one."""
    env = dict(os.environ, VIRTUAL_ENV=sys.prefix)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture
def site(project, python_env, free_port):
    """A copy of the project whose scripts use a free port."""
    site = Site(project, python_env, free_port())
    yield site
    site.kill_all()


@pytest.fixture
def started(site):
    """A site whose server start.sh has started."""
    result = site.run("start.sh")
    assert result.returncode == 0, result.stderr
    return site


class Site:
    """A copy of the project, its scripts and the gunicorn they run."""

    def __init__(self, path, env, port):
        self.path = path
        self.env = env
        self.port = port

    def run(self, script, *args, cwd=None, prefix=(), **env):
        """Run a script (from another folder, or cwd) with PORT set, after the
        command words in prefix if any; return the finished process."""
        return subprocess.run(
            [*prefix, "sh", str(self.path / script) if cwd is None else script, *args],
            cwd=cwd or self.path.parent,
            env={**self.env, "PORT": str(self.port), **env},
            capture_output=True,
            text=True,
            timeout=90,
        )

    def popen(self, script, **env):
        """Start a script with PORT set and return it, running."""
        return subprocess.Popen(
            ["sh", str(self.path / script)],
            cwd=self.path.parent,
            env={**self.env, "PORT": str(self.port), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def get(self, path="/health/ping", port=None):
        """Return (status, body) of a GET on this site, or (None, error)."""
        connection = http.client.HTTPConnection(
            "127.0.0.1", port or self.port, timeout=5
        )
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read().decode()
        except OSError as error:
            return None, str(error)
        finally:
            connection.close()

    def pidfile(self, port=None):
        """gunicorn's pidfile: the only state of a server the scripts read."""
        return self.path / "run" / f"app-{port or self.port}.pid"

    def pid(self, port=None):
        """The master's pid, from gunicorn's pidfile."""
        return int(self.pidfile(port).read_text())

    def log(self, port=None):
        """The server's log: gunicorn's lines, the app's and the access lines."""
        return (self.path / "logs" / f"app-{port or self.port}.log").read_text()

    def servers(self):
        """The masters of the gunicorns running in this copy (for checks and
        clean-up only: the scripts never tell a process by its folder)."""
        found = gunicorns(self.path)
        return sorted(pid for pid, parent in found.items() if parent not in found)

    def workers(self, master=None):
        """The pids of the master's live workers (the recorded master by default)."""
        found = gunicorns(self.path)
        master = master or self.pid()
        return sorted(pid for pid, parent in found.items() if parent == master)

    def kill_all(self):
        """Kill every gunicorn of this copy: the test's own processes."""
        for pid in gunicorns(self.path):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def gunicorns(folder):
    """Return {pid: parent pid} of the live gunicorn processes working in folder."""
    folder = os.path.realpath(folder)
    found = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{name}/stat").read_text()
            state, parent = stat[stat.rindex(")") + 2 :].split()[:2]
            words = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            if (
                state != "Z"
                and os.readlink(f"/proc/{name}/cwd") == folder
                and any(b"gunicorn" in word for word in words)
            ):
                found[int(name)] = int(parent)
    return found


def without_root_powers(*capabilities):
    """Command words that run a program without the named capabilities of root
    (e.g. "dac_override"), so that root meets the limits other users meet;
    nothing for other users, who have none of them."""
    if os.getuid() != 0:
        return []
    return ["setpriv", "--bounding-set", ",".join(f"-{c}" for c in capabilities)]


def wait_until(check, what, timeout=20):
    """Poll check every 50 ms until it is true; fail naming what after timeout s."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.05)


def listening(port):
    """Say whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def env_examples():
    """The example lines of .env.example, uncommented."""
    lines = (PROJECT / ".env.example").read_text().splitlines()
    return [line[2:] for line in lines if re.match(r"# [A-Z_]+=", line)]
