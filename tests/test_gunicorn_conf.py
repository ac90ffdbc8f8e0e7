"""gunicorn.conf.py under gunicorn: what gunicorn takes from it, where the
lines go in the foreground, a HUP that cannot stop the server, and a file that
imports nothing of the app, so that an app that fails to load still has its
error logged."""

import ast
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from gunicorn.app.base import Application

from tests.conftest import PROJECT, wait_until

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


@pytest.fixture
def load(tmp_path, monkeypatch):
    """A function that has gunicorn load gunicorn.conf.py, copied alone into
    tmp_path, with the given environment, and returns gunicorn's settings.
    What the file sets in this process is undone."""
    shutil.copy(PROJECT / "gunicorn.conf.py", tmp_path)
    monkeypatch.setitem(sys.modules, "server_settings", types.ModuleType("fresh"))
    monkeypatch.setitem(sys.modules, "__config__", None)
    monkeypatch.setenv("DRAIN_FILE", "")  # the file sets it
    umask = os.umask(0o022)  # the file sets it too
    os.umask(umask)

    class Loaded(Application):
        def load_config(self):
            self.load_config_from_file(str(tmp_path / "gunicorn.conf.py"))

        def load(self):
            raise AssertionError("no app is loaded here")

    def load(**environ):
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        return Loaded().cfg

    yield load
    os.umask(umask)


def test_gunicorn_takes_the_settings(load):
    cfg = load(
        HOST="::1",
        PORT="5001",
        WEB_CONCURRENCY="3",
        GRACEFUL_TIMEOUT="7",
        LOG_LEVEL="WARNING",
    )
    assert cfg.bind == ["[::1]:5001"]
    assert (cfg.workers, cfg.threads, cfg.worker_class_str) == (3, 4, "gthread")
    assert (cfg.graceful_timeout, cfg.loglevel) == (7, "warning")
    assert (cfg.wsgi_app, cfg.preload_app) == ("wsgi:app", True)


def test_port_alone_binds_the_loopback_address(load):
    # gunicorn by itself would bind 0.0.0.0:$PORT, every interface.
    assert load(PORT="5004").bind == ["127.0.0.1:5004"]


def test_a_bad_value_stops_gunicorn_in_one_line(load):
    with pytest.raises(SystemExit) as stop:
        load(WEB_CONCURRENCY="many")
    assert stop.value.code == (
        "error: WEB_CONCURRENCY='many' in the environment: use a whole number "
        "from 1 to 64"
    )


def test_statsd_is_off_unless_asked_and_named_after_the_app(load, monkeypatch):
    assert load().statsd_host is None
    monkeypatch.setenv("FLASK_APP_NAME", "shop.eu")  # a dot would split the name
    cfg = load(STATSD_HOST="::1", STATSD_PORT="9125")
    assert (cfg.statsd_host, cfg.statsd_prefix) == (("::1", 9125), "shop_eu")
    cfg = load(STATSD_HOST="statsd.internal", STATSD_PORT="8125")
    assert cfg.statsd_host == ("statsd.internal", 8125)


def test_the_metrics_take_the_app_name_from_env_file_too(load, tmp_path):
    (tmp_path / ".env").write_text("FLASK_APP_NAME=shop\n")
    assert load(STATSD_HOST="127.0.0.1").statsd_prefix == "shop"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"STATSD_HOST": "127.0.0.1:8125"}, "its port goes in STATSD_PORT"),
        ({"STATSD_HOST": "a b"}, "use an address such as 127.0.0.1"),
        ({"STATSD_HOST": "127.0.0.1", "STATSD_PORT": "99999"}, "from 1 to 65535"),
    ],
)
def test_a_statsd_address_that_cannot_work_is_refused(load, given, why):
    with pytest.raises(SystemExit) as stop:
        load(**given)
    assert why in stop.value.code


def test_debug_mode_is_never_on_under_gunicorn(load, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    load()
    assert "FLASK_DEBUG" not in os.environ


def test_the_app_learns_its_drain_file(load, tmp_path):
    load(PORT="5003")
    assert os.environ["DRAIN_FILE"] == f"{tmp_path}/run/app-5003.drain"
    load(RUNTIME_DIRECTORY="/run/myapp")  # under systemd
    assert os.environ["DRAIN_FILE"] == "/run/myapp/app-5003.drain"


def test_the_servers_files_are_closed_to_others(load):
    load()
    umask = os.umask(0o022)
    os.umask(umask)
    assert umask == 0o027


# Plain gunicorn in the foreground, as systemd and containers run it ------------


@contextlib.contextmanager
def foreground(site, out, err, **env):
    """Run plain gunicorn in site's folder, its stdout and stderr written to
    the files out and err; yield the process once it answers, stop it after."""
    with open(out, "w") as stdout, open(err, "w") as stderr:
        server = subprocess.Popen(
            [GUNICORN],
            cwd=site.path,
            env={**site.env, "PORT": str(site.port), **env},
            stdout=stdout,
            stderr=stderr,
        )
    try:
        wait_until(
            lambda: server.poll() is not None or site.get()[0] == 200,
            "gunicorn to answer",
            60,
        )
        assert server.poll() is None, Path(err).read_text()
        yield server
    finally:
        server.terminate()
        # A stop is bounded by GRACEFUL_TIMEOUT (30 s): a worker that got the
        # TERM while it booted ignores it until the master kills it then.
        server.wait(timeout=45)


@pytest.mark.parametrize(
    ("env", "probes", "pages"),
    [({}, True, True), ({"ACCESS_LOG": "off"}, False, False)]
    + [({"HEALTH_ACCESS_LOG": "off"}, False, True)],
)
def test_in_the_foreground_access_lines_go_to_stdout_the_rest_to_stderr(
    site, tmp_path, env, probes, pages
):
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with foreground(site, out, err, **env):
        assert site.get("/nowhere")[0] == 404
    stdout, stderr = out.read_text(), err.read_text()
    assert ('"GET /health/ping HTTP/1.1" 200' in stdout) == probes, stdout
    assert ('"GET /nowhere HTTP/1.1" 404' in stdout) == pages, stdout
    assert all(" gunicorn.access: " in line for line in stdout.splitlines())
    assert "] [-] gunicorn.error: Listening at: " in stderr
    assert " gunicorn.access: " not in stderr


def test_a_hup_with_a_broken_env_file_keeps_the_server(site, tmp_path):
    """Plain gunicorn, as systemd's reload signals it: a HUP reads .env again."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with foreground(site, out, err) as server:
        (site.path / ".env").write_text("WEB_CONCURRENCY=many\n")
        server.send_signal(signal.SIGHUP)
        wait_until(lambda: "warning: " in err.read_text(), "the HUP to be read")
        time.sleep(1)  # a master that fails the HUP is gone by then
        assert server.poll() is None, "the HUP stopped gunicorn"
        assert site.get()[0] == 200
    assert (
        f"warning: WEB_CONCURRENCY='many' in {site.path / '.env'}: use a whole "
        "number from 1 to 64; the settings in force stay\n"
    ) in err.read_text()


def test_a_hup_after_run_and_logs_were_removed_keeps_the_server(started):
    pid = started.pid()
    for folder in "run", "logs":  # the pidfile's folder and the log's
        shutil.rmtree(started.path / folder)
    os.kill(pid, signal.SIGHUP)
    wait_until(
        lambda: started.pidfile().exists() or not started.servers(),
        "gunicorn to write its pidfile again",
    )
    time.sleep(1)  # a master that fails the HUP is gone by then
    assert started.servers() == [pid]
    assert started.get()[0] == 200
    assert "Booting worker" in started.log(), "the log was not opened again"


# Nothing of the app in gunicorn.conf.py -----------------------------------------


def test_a_blueprint_that_does_not_compile_fails_the_start_in_one_line(site):
    with open(site.path / "app" / "health.py", "a") as health:
        health.write("\n\ndef broken(:\n")
    line = len((PROJECT / "app" / "health.py").read_text().splitlines()) + 3
    result = site.run("start.sh")
    assert result.returncode == 1
    assert result.stderr == (
        "error: start failed: gunicorn exited (1): SyntaxError: invalid syntax "
        f"(app/health.py, line {line}) (logs/app-{site.port}.log)\n"
    )
    assert site.servers() == []
    assert not site.pidfile().exists()
    log = site.log()
    assert 'app/health.py", line ' in log
    assert "SyntaxError: invalid syntax" in log


def test_the_settings_are_read_with_the_app_broken(project, python_env, free_port):
    port = free_port()
    for name in "__init__.py", "log.py":
        (project / "app" / name).write_text("this is not python\n")
    # From the project folder, where `import app` would find the broken one.
    show = "import runpy; print(runpy.run_path('gunicorn.conf.py')['bind'])"
    result = subprocess.run(
        [sys.executable, "-c", show],
        cwd=project,
        env=dict(python_env, PORT=str(port)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, f"127.0.0.1:{port}\n"), (
        result.stderr
    )
    status = subprocess.run(
        [sys.executable, "ops/ctl.py", "status"],
        cwd=project,
        env=dict(python_env, PORT=str(port)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (status.returncode, status.stdout) == (
        3,
        f"{project.name} is not running on port {port}\n",
    ), status.stderr


def imported(path):
    """The top-level names of the modules the Python file path imports,
    by import statements and by importlib.import_module("...")."""
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            yield str(node.args[0].value).split(".")[0]


@pytest.mark.parametrize(
    ("files", "forbidden"),
    [
        (["app/**/*.py"], {"ops"}),
        (["ops/**/*.py"], {"app", "wsgi"}),
        (["gunicorn.conf.py"], {"app", "ops", "wsgi", "config"}),
    ],
)
def test_app_and_ops_never_import_each_other(files, forbidden):
    paths = [path for pattern in files for path in PROJECT.glob(pattern)]
    assert paths
    found = {
        f"{path.relative_to(PROJECT)} imports {name}"
        for path in paths
        for name in set(imported(path)) & forbidden
    }
    assert found == set()
