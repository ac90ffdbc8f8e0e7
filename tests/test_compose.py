"""compose.yaml, run for real by podman-compose with no network: built from
deploy/Containerfile, up, answering, healthy, a graceful stop that lets a
request longer than compose's default 10 s finish, down."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT
from tests.test_container import (
    NEEDS_PODMAN,
    base_image,
    build_context,
    get_inside,
    podman,
    podman_configured,
)

COMPOSE = [str(Path(sys.executable).with_name("podman-compose"))]
pytestmark = [pytest.mark.lifecycle, NEEDS_PODMAN]
# Longer than the 10 s compose gives a container to stop by default.
SLOW_ROUTE = """
import time


@app.get("/slow")
def slow():
    time.sleep(12)
    return {"slow": True}
"""
KEY = "a key from .env, with spaces"


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    """The project's compose.yaml, as a test may run it: no network (so no
    published port) and the local base image; return (folder, project name)."""
    with podman_configured(tmp_path_factory):
        yield from composed_project(tmp_path_factory)


def composed_project(tmp_path_factory):
    """Write the test's compose file; yield (folder, project name), and take
    the project down after."""
    context = build_context(tmp_path_factory.mktemp("compose"), SLOW_ROUTE)
    # .env holds the key, and settings for start.sh that must stay out.
    (context / ".env").write_text(f'FLASK_SECRET_KEY="{KEY}"\nPORT=5000\n')
    spec = yaml.safe_load((PROJECT / "compose.yaml").read_text())
    service = spec["services"]["app"]
    assert service.pop("ports") == ["127.0.0.1:8000:8000"]
    service["network_mode"] = "none"
    service["build"]["network"] = "none"
    (context / "compose.test.yaml").write_text(yaml.safe_dump(spec))
    name = f"starter-compose-{os.getpid()}"
    yield context, name
    compose(context, name, "down", check=False)
    podman("rmi", "-f", service["image"], check=False)


def compose(folder, name, *args, check=True):
    """Run podman-compose on folder's test file; return the finished process."""
    env = dict(os.environ, PYTHON_IMAGE=base_image())
    result = subprocess.run(
        [*COMPOSE, "-f", "compose.test.yaml", "-p", name, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_up_healthy_graceful_stop_down(composed):
    folder, name = composed
    compose(folder, name, "up", "-d", "--build")
    container = f"{name}_app_1"
    answer = subprocess.run(get_inside(container, timeout=5), capture_output=True)
    assert json.loads(answer.stdout) == {"app": "myapp", "status": "ok"}
    check = subprocess.run(["podman", "healthcheck", "run", container], timeout=60)
    assert check.returncode == 0
    config = json.loads(podman("inspect", container))[0]
    assert config["HostConfig"]["ReadonlyRootfs"] is True
    env = dict(item.split("=", 1) for item in config["Config"]["Env"])
    assert env["FLASK_SECRET_KEY"] == KEY  # quotes of .env undone
    assert (env["PORT"], env["LOG_FORMAT"]) == ("8000", "json")

    slow = subprocess.Popen(get_inside(container, "/slow", 30), stdout=subprocess.PIPE)
    time.sleep(1)
    began = time.monotonic()
    compose(folder, name, "stop")
    assert time.monotonic() - began > 10, "the request was not in flight"
    assert json.loads(slow.communicate(timeout=30)[0]) == {"slow": True}
    assert podman("inspect", "--format", "{{.State.ExitCode}}", container) == "0"
    logs = podman("logs", container).splitlines()
    assert logs and all(json.loads(line) for line in logs)

    compose(folder, name, "down")
    assert podman("ps", "-a", "-q", "--filter", f"name={container}") == ""


@pytest.mark.parametrize("env", ["", 'FLASK_SECRET_KEY=""\n'])
def test_no_key_in_env_file_is_refused_naming_it(tmp_path, env):
    shutil.copy(PROJECT / "compose.yaml", tmp_path)
    (tmp_path / ".env").write_text(env)
    result = subprocess.run(
        [*COMPOSE, "config"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.splitlines()[-1].endswith("set FLASK_SECRET_KEY in .env")
