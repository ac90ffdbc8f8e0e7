"""Fixtures: apps isolated from the developer's own instance folder, .env and
environment, and copies of the project for tests that run the real scripts."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app

PROJECT = Path(__file__).resolve().parent.parent
SERVER_VARIABLES = ("HOST", "PORT", "WEB_CONCURRENCY", "LOG_LEVEL", "GRACEFUL_TIMEOUT")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run every test without FLASK_*, private _APP_* or server variables."""
    for name in list(os.environ):
        if name.startswith(("FLASK_", "_APP_")) or name in SERVER_VARIABLES:
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


@pytest.fixture
def project(tmp_path):
    """A copy of the project's files in a folder whose path has a space and Chinese."""
    copy = tmp_path / "my app 应用"
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
