"""docs/offline.md's offline install, done for real: download the lock into a
folder, install from that folder alone into a fresh venv, start the app, ping,
stop; and uv sync, as docs/development.md gives it.

It needs the package index, so it runs only with ONLINE_CHECKS=1 (.ci/run sets it).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Site
from tests.test_requirements import pins

pytestmark = pytest.mark.skipif(
    not os.environ.get("ONLINE_CHECKS"),
    reason="needs the package index: set ONLINE_CHECKS=1 (as .ci/run does)",
)


def run(command, env=None):
    """Run command, failing the test with its output when it fails."""
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def normal(name):
    """A distribution name as pip compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_offline_install_from_downloaded_packages(project, tmp_path, free_port):
    pkgs, venv = tmp_path / "pkgs", tmp_path / "venv"
    requirements = str(project / "requirements.txt")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "-d",
            str(pkgs),
            "-r",
            requirements,
        ]
    )

    # The server side: no index, no other wheel folder, no pip config.
    offline = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    offline.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    run([sys.executable, "-m", "venv", str(venv)], env=offline)
    python = str(venv / "bin" / "python")
    run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "-f",
            str(pkgs),
            "-r",
            requirements,
        ],
        env=offline,
    )

    pinned = {normal(n): v for n, v in pins(project / "requirements.txt").items()}
    frozen = run([python, "-m", "pip", "freeze", "--all"], env=offline).splitlines()
    for line in frozen:
        name, version = line.split("==")
        if normal(name) in ("pip", "setuptools", "wheel"):
            continue
        assert pinned.get(normal(name)) == version, (
            f"{line} is not pinned in requirements.txt"
        )

    site = Site(project, dict(offline, VIRTUAL_ENV=str(venv)), free_port())
    try:
        result = site.run("start.sh")
        assert result.returncode == 0, result.stderr
        assert site.get()[0] == 200
        assert site.run("stop.sh").returncode == 0
    finally:
        site.kill_all()


def test_uv_sync_makes_a_venv_the_scripts_use(project, free_port):
    # uv as the docs give it (docs/development.md, "Dependencies"): .venv/
    # from uv.lock, which start.sh finds by itself.
    uv = str(Path(sys.executable).with_name("uv"))
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["UV_PROJECT_ENVIRONMENT"] = str(project / ".venv")
    run([uv, "sync", "--frozen", "--quiet", "--project", str(project)], env=env)
    # uv run: every check in that environment, with nothing to install (in a
    # clone, as a user has: run.sh lists the shell files with git).
    run(["git", "-C", str(project), "init", "-q"])
    run(["git", "-C", str(project), "add", "-A"])
    checks = [uv, "run", "--frozen", "--quiet", "--project", str(project)]
    checks += ["sh", str(project / "tests" / "run.sh"), "-p", "no:cacheprovider"]
    assert "passed" in run([*checks, "tests/test_health.py"], env=env)
    site = Site(project, env, free_port())
    try:
        result = site.run("start.sh")
        assert result.returncode == 0, result.stderr
        assert site.get()[0] == 200
        argv = Path(f"/proc/{site.pid()}/cmdline").read_text().split("\0")
        assert argv[1] == f"{project}/.venv/bin/gunicorn"
    finally:
        site.kill_all()
