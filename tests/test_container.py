"""deploy/Containerfile, built and run by podman with no network: a base
image made from the Debian root of tests/nspawn.py, the wheels of the README's
offline route, an unprivileged user and a read-only root."""

import contextlib
import json
import os
import shutil
import subprocess
import time

import pytest
import yaml

from tests import nspawn
from tests.conftest import PROJECT, copy_project
from tests.test_kubernetes import render_manifests

# What the podman tests (here and in test_compose.py) need.
NEEDS_PODMAN = pytest.mark.skipif(
    bool(nspawn.missing()) or not shutil.which("podman"),
    reason=nspawn.missing() or "podman is not installed (apt-get install podman)",
)
pytestmark = [pytest.mark.lifecycle, NEEDS_PODMAN]
SLOW_ROUTE = """
import time


@app.get("/slow")
def slow():
    time.sleep(2)
    return {"slow": True}
"""
# podman in this kind of sandbox: runc, and limits it is allowed to set.
CONTAINERS_CONF = """[engine]
runtime = "runc"
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
"""


def podman(*args, check=True, timeout=300):
    """Run podman; return its stdout (fail with its output when check)."""
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, f"podman {args}: {result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The app's image, built offline from a copy of the project."""
    with podman_configured(tmp_path_factory):
        yield from built_image(tmp_path_factory)


def built_image(tmp_path_factory):
    """Build the image; yield its tag, and remove it after."""
    base = base_image()
    context = build_context(tmp_path_factory.mktemp("context"), SLOW_ROUTE)
    # What must stay out of the image.
    (context / ".env").write_text("FLASK_SECRET_KEY=from-the-env-file\n")
    (context / "instance" / "config.py").write_text(
        "SECRET_KEY = 'instance-secret-marker'\n"
    )
    tag = f"localhost/starter-app:test-{os.getpid()}"
    podman(
        "build",
        "-q",
        "--network=none",
        "--format",
        "docker",
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "--build-arg",
        "APP_NAME=shop",
        "-f",
        str(context / "deploy" / "Containerfile"),
        "-t",
        tag,
        str(context),
    )
    yield tag
    podman("rmi", "-f", tag, check=False)


@contextlib.contextmanager
def podman_configured(tmp_path_factory):
    """Point podman at a configuration it can run with here, for the time of
    the with block."""
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    kept = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = str(conf)
    try:
        yield
    finally:
        os.environ.pop("CONTAINERS_CONF")
        if kept is not None:
            os.environ["CONTAINERS_CONF"] = kept


def base_image():
    """The base image's name, imported from the Debian root of the systemd
    tests the first time: no registry is needed."""
    root = nspawn.debian_root()
    base = f"localhost/starter-base:{root.name}"
    if subprocess.run(["podman", "image", "exists", base]).returncode:
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        podman_import = ["podman", "import", "-q", "-", base]
        subprocess.run(podman_import, stdin=tar.stdout, check=True, timeout=300)
        tar.wait()
    return base


def build_context(folder, route):
    """A copy of the project in folder, with route added to wsgi.py and the
    wheels of the offline route, which the Containerfile uses instead of the
    index."""
    context = copy_project(folder)
    with open(context / "wsgi.py", "a") as wsgi:
        wsgi.write(route)
    shutil.copytree(nspawn.wheelhouse(PROJECT / "requirements.txt"), context / "wheels")
    return context


@pytest.fixture
def container(image):
    """A running container of the image, read-only, with a key."""
    name = f"starter-{os.getpid()}-{time.monotonic_ns()}"
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--network=none",
        "--read-only",
        "-e",
        "FLASK_SECRET_KEY=from the test",
        image,
    )
    yield name
    podman("rm", "-f", name, check=False)


def get_inside(container, path="/health/ping", timeout=10):
    """The command that GETs path inside the container (it has no network),
    retrying for 10 s while the server comes up, and prints the body."""
    code = f"""
import time, urllib.request
for _ in range(100):
    try:
        url = "http://127.0.0.1:8000{path}"
        answer = urllib.request.urlopen(url, timeout={timeout})
        print(answer.read().decode())
        break
    except OSError:
        time.sleep(0.1)
"""
    return ["podman", "exec", container, "python3", "-c", code]


def fetch(container, path="/health/ping"):
    """GET path inside the container; return the body."""
    return podman(*get_inside(container, path)[1:])


def test_the_image_serves_as_an_unprivileged_user(container):
    assert json.loads(fetch(container)) == {"app": "shop", "status": "ok"}
    assert podman("exec", container, "id", "-u") == "10001"
    user = podman(
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}",
        podman("inspect", "--format", "{{.Image}}", container),
    )
    assert user == "10001:10001"


def test_the_code_is_compiled_in_the_image(container):
    # It cannot be compiled where it runs (read-only), so it is in the image.
    cached = podman("exec", container, "ls", "/app/app/__pycache__")
    assert "__init__.cpython-" in cached


def test_stop_lets_the_request_in_flight_finish(container):
    assert fetch(container)  # up
    slow = subprocess.Popen(
        get_inside(container, "/slow", timeout=20), stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.5)
    podman("stop", "-t", "40", container)
    assert json.loads(slow.communicate(timeout=30)[0]) == {"slow": True}
    assert podman("inspect", "--format", "{{.State.ExitCode}}", container) == "0"


def test_no_key_on_a_read_only_root_is_one_line_naming_the_variable(image):
    result = subprocess.run(
        ["podman", "run", "--rm", "--network=none", "--read-only", image],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert len(errors) == 1, result.stderr
    assert "set FLASK_SECRET_KEY" in errors[0]


def test_the_health_check_passes_and_the_logs_go_to_podman(container):
    assert fetch(container)
    check = subprocess.run(
        ["podman", "healthcheck", "run", container],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    logs = subprocess.run(
        ["podman", "logs", container], capture_output=True, text=True, timeout=60
    )
    # The image logs JSON lines (LOG_FORMAT=json), podman's own aside.
    errors = [json.loads(line) for line in logs.stderr.splitlines() if line[:1] == "{"]
    assert any(e["message"].startswith("Booting worker") for e in errors)
    access = [json.loads(line) for line in logs.stdout.splitlines()]
    assert {"path": "/health/ping", "status": 200}.items() <= access[0].items()


def test_no_secret_and_no_local_file_gets_into_the_image(image):
    markers = "-e from-the-env-file -e instance-secret-marker"
    look = f"ls -A /app; grep -rl --exclude-dir=venv {markers} /app"
    found = podman(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint",
        "/bin/sh",
        image,
        "-c",
        look,
        check=False,
    )
    names = [
        "__pycache__",
        "app",
        "config.py",
        "gunicorn.conf.py",
        "venv",
        "wsgi.py",
    ]
    assert found.split() == names


def test_the_kubernetes_deployment_runs_under_podman_kube_play(image, tmp_path):
    manifests = render_manifests()
    deployment = manifests["Deployment"]
    deployment["spec"]["replicas"] = 1  # the autoscaler's minimum is a cluster's
    (app,) = deployment["spec"]["template"]["spec"]["containers"]
    app["image"] = image
    # What podman cannot take from a cluster, given literally: the ConfigMap,
    # the Secret, the downward API; and no ports on no network.
    settings = manifests["ConfigMap"]["data"]
    app["env"] = [{"name": k, "value": v} for k, v in settings.items()] + [
        {"name": "FLASK_SECRET_KEY", "value": "from the test"},
        {"name": "WEB_CONCURRENCY", "value": "2"},
    ]
    del app["envFrom"], app["ports"]
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    podman("kube", "play", "--network", "none", str(manifest))
    try:
        names = podman("ps", "--format", "{{.Names}}").split()
        (container,) = [name for name in names if name.endswith("-app")]
        assert json.loads(fetch(container)) == {"app": "shop", "status": "ok"}
        assert json.loads(fetch(container, "/health/ready")) == {"status": "ok"}
        assert podman("exec", container, "id", "-u") == "10001"
        # /var/tmp is open to every user: only a read-only root refuses it.
        wrote = subprocess.run(
            ["podman", "exec", container, "touch", "/var/tmp/written"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Read-only file system" in wrote.stderr, "the root is writable"
        pod = podman("inspect", "--format", "{{.Pod}}", container)
        podman("pod", "stop", "-t", "50", pod, timeout=120)
        state = podman("inspect", "--format", "{{.State.ExitCode}}", container)
        assert state == "0", "not a graceful stop"
        logs = subprocess.run(
            ["podman", "logs", container], capture_output=True, text=True, timeout=60
        )
        lines = logs.stderr.splitlines()
        assert lines and all(json.loads(line)["level"] for line in lines), lines
    finally:
        podman("kube", "down", str(manifest), check=False)
