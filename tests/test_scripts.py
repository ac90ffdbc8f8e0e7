"""start.sh, stop.sh, restart.sh and status.sh, run for real.

Each test runs the scripts of a copy of the project (its path has a space and
Chinese characters) against a real gunicorn on a free port of 127.0.0.1, from
another folder, with bounded waits, and stops whatever it started.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from ops import serverctl
from tests.conftest import Site, listening


def test_start_ping_stop(site):
    result = site.run("start.sh")
    assert result.returncode == 0, result.stderr
    pid = site.pid()
    assert result.stdout == (
        f"started {site.path.name} (pid {pid}) at http://127.0.0.1:{site.port}, "
        "logs in logs/\n"
    )
    status, body = site.get()
    assert status == 200
    assert f'"app":"{site.path.name}"' in body

    result = site.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"stopped {site.path.name} (pid {pid})\n"
    assert not site.pidfile().exists()
    assert not listening(site.port)
    assert site.servers() == []
    assert "Shutting down: Master" in site.log()


def test_scripts_run_from_the_project_folder_too(site):
    assert site.run("start.sh", cwd=site.path).returncode == 0
    assert site.get()[0] == 200
    assert site.run("stop.sh", cwd=site.path).returncode == 0
    assert site.servers() == []


def test_start_when_running_starts_nothing(started):
    pid = started.pid()
    result = started.run("start.sh")
    assert result.returncode == 0
    assert result.stdout == f"{started.path.name} is already running (pid {pid})\n"
    assert started.servers() == [pid]


def test_stop_when_stopped_says_so(site):
    result = site.run("stop.sh")
    assert result.returncode == 0
    assert result.stdout == f"{site.path.name} is not running\n"


def test_stale_pidfile_with_a_dead_pid_is_removed(site):
    dead = subprocess.Popen(["true"])
    dead.wait()
    site.pidfile().parent.mkdir()
    site.pidfile().write_text(f"{dead.pid}\n")
    result = site.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert f"removed stale pidfile run/app-{site.port}.pid: pid {dead.pid} is not" in (
        result.stdout
    )
    assert site.pid() != dead.pid
    assert site.get()[0] == 200


def test_pidfile_naming_an_unrelated_process_never_harms_it(site):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        site.pidfile().parent.mkdir()
        site.pidfile().write_text(f"{stranger.pid}\n")
        result = site.run("stop.sh")
        assert result.returncode == 0
        assert "is another program, left alone" in result.stdout
        site.pidfile().write_text(f"{stranger.pid}\n")
        assert site.run("start.sh").returncode == 0
        assert site.run("stop.sh").returncode == 0
        assert stranger.poll() is None, "the unrelated process was signalled"
    finally:
        stranger.kill()
        stranger.wait()


def test_another_projects_gunicorn_in_the_pidfile_is_left_alone(
    tmp_path, site, python_env, free_port
):
    other = Site(tmp_path / "other", python_env, free_port())
    other.path.mkdir()
    for item in site.path.iterdir():
        subprocess.run(["cp", "-R", str(item), str(other.path)], check=True)
    try:
        assert other.run("start.sh").returncode == 0
        site.pidfile().parent.mkdir(exist_ok=True)
        site.pidfile().write_text(f"{other.pid()}\n")
        result = site.run("start.sh")
        assert result.returncode == 0, result.stderr
        assert "is another program, left alone" in result.stdout
        assert site.run("stop.sh").returncode == 0
        assert other.get()[0] == 200
    finally:
        other.kill_all()


def test_port_taken_by_another_program_fails_fast(site):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", site.port))
        taken.listen()
        began = time.monotonic()
        result = site.run("start.sh")
        assert time.monotonic() - began < 10
    assert result.returncode != 0
    assert f"127.0.0.1:{site.port} is already in use" in result.stderr
    assert "PORT=" in result.stderr
    assert not site.pidfile().exists()
    assert site.servers() == []


def test_app_import_error_fails_with_the_error(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("import no_such_module\n")
    result = site.run("start.sh")
    assert result.returncode != 0
    assert "No module named 'no_such_module'" in result.stderr
    assert not site.pidfile().exists()
    assert site.servers() == []
    assert "no_such_module" in site.log(), "the error must stay in the log"


def test_broken_instance_config_names_file_and_line(site):
    (site.path / "instance" / "config.py").write_text('APP_NAME = "x"\nBROKEN = (\n')
    result = site.run("start.sh")
    assert result.returncode != 0
    assert "instance/config.py line 2" in result.stderr
    assert not site.pidfile().exists()
    assert site.servers() == []


@pytest.mark.parametrize(
    ("variable", "value"), [("WEB_CONCURRENCY", "abc"), ("PORT", "http")]
)
def test_bad_setting_is_one_line_naming_it(site, variable, value):
    result = site.run("start.sh", **{variable: value})
    assert result.returncode != 0
    assert result.stderr.startswith(f"error: {variable}='{value}' in the environment")
    assert len(result.stderr.splitlines()) == 1
    assert site.servers() == []


def test_bad_setting_in_env_file_names_the_file(site):
    (site.path / ".env").write_text("WEB_CONCURRENCY=many\n")
    result = site.run("start.sh")
    assert result.returncode != 0
    assert f"WEB_CONCURRENCY='many' in {site.path / '.env'}" in result.stderr


def test_missing_gunicorn_names_the_fix(site):
    env = {k: v for k, v in site.env.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"
    result = subprocess.run(
        ["sh", str(site.path / "start.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "gunicorn not found" in result.stderr
    assert "pip install -r requirements.txt" in result.stderr


def test_stop_then_start_at_once_after_serving_requests(started):
    for _ in range(20):
        assert started.get()[0] == 200
    assert started.run("stop.sh").returncode == 0
    result = started.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert started.get()[0] == 200


def test_two_instances_from_one_folder(started, free_port):
    second = free_port()
    result = started.run("start.sh", PORT=str(second))
    assert result.returncode == 0, result.stderr
    assert started.get(port=second)[0] == 200
    assert started.pid(second) != started.pid()

    assert started.run("stop.sh", PORT=str(second)).returncode == 0
    assert not listening(second)
    assert started.get()[0] == 200


def load(site, stop, counts):
    """Send GETs, each on a new connection, until stop is set (at most 2,000)."""
    for _ in range(2000):
        if stop.is_set():
            return
        counts["ok" if site.get()[0] == 200 else "failed"] += 1


def test_restart_under_load_fails_no_request(started):
    old_workers = serverctl.workers(started.pid())
    stop, counts = threading.Event(), {"ok": 0, "failed": 0}
    clients = [
        threading.Thread(target=load, args=(started, stop, counts)) for _ in range(4)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(0.3)
        result = started.run("restart.sh")
        time.sleep(0.3)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"reloaded {started.path.name} (pid {started.pid()})\n"
    assert not serverctl.workers(started.pid()) & old_workers
    assert counts["ok"] > 0
    assert counts["failed"] == 0


def test_restart_with_broken_code_keeps_the_old_server(started):
    pid = started.pid()
    with open(started.path / "wsgi.py", "a") as wsgi:
        wsgi.write("raise RuntimeError('half-deployed')\n")
    result = started.run("restart.sh")
    assert result.returncode != 0
    assert "RuntimeError: half-deployed" in result.stderr
    assert f"(pid {pid}) keeps running the old code" in result.stderr
    assert started.get()[0] == 200
    assert started.pid() == pid


def test_restart_picks_up_an_edited_env_file(started):
    (started.path / ".env").write_text("FLASK_APP_NAME='renamed shop'\n")
    assert started.run("restart.sh").returncode == 0
    assert '"app":"renamed shop"' in started.get()[1]


def test_restart_when_stopped_starts(site):
    result = site.run("restart.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"started {site.path.name}")
    assert site.get()[0] == 200


def test_status_exit_codes(site):
    result = site.run("status.sh")
    assert (result.returncode, result.stdout) == (
        3,
        f"{site.path.name} is not running\n",
    )

    assert site.run("start.sh").returncode == 0
    pid = site.pid()
    result = site.run("status.sh")
    assert result.returncode == 0
    assert result.stdout.startswith(f"{site.path.name} is running (pid {pid})")

    os.killpg(pid, signal.SIGSTOP)  # alive, but not answering
    try:
        assert site.run("status.sh").returncode == 4
    finally:
        os.killpg(pid, signal.SIGCONT)

    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while serverctl.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    result = site.run("status.sh")
    assert result.returncode == 1
    assert site.pidfile().exists(), "status only reports, it removes nothing"


def test_secret_key_warning_once_per_server(started):
    assert started.log().count("no SECRET_KEY configured") == 1
    assert started.run("restart.sh").returncode == 0
    assert started.log().count("no SECRET_KEY configured") == 1


def test_logs_share_one_format_and_show_request_ids(started):
    connection = http.client.HTTPConnection("127.0.0.1", started.port, timeout=5)
    connection.request("GET", "/health/ping", headers={"X-Request-ID": "trace-42"})
    assert connection.getresponse().status == 200
    connection.close()
    assert started.run("stop.sh").returncode == 0
    assert " INFO [" in started.log() and "] [-] gunicorn.error: Listening at" in (
        started.log()
    )
    access = started.log("access")
    assert '"GET /health/ping HTTP/1.1" 200' in access
    assert "trace-42" in access


def test_start_waits_for_workers_even_with_a_quiet_log_level(site):
    result = site.run("start.sh", LOG_LEVEL="warning", WEB_CONCURRENCY="3")
    assert result.returncode == 0, result.stderr
    assert site.log().count("worker ready") == 3
    assert "Booting worker" not in site.log()


def test_reopen_logs_signals_only_our_servers(started, free_port):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        # USR1 would end the stranger: a stale pidfile must not lead to it.
        stale = started.path / "run" / f"app-{free_port()}.pid"
        stale.write_text(f"{stranger.pid}\n")
        ctl = [sys.executable, str(started.path / "ops" / "serverctl.py")]
        ctl.append("reopen-logs")
        result = subprocess.run(ctl, env=started.env, capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert stranger.poll() is None, "a process that is not ours was signalled"
        assert started.get()[0] == 200
    finally:
        stranger.kill()
        stranger.wait()


def test_access_log_can_be_turned_off(site):
    result = site.run("start.sh", ACCESS_LOG="off")
    assert result.returncode == 0, result.stderr
    assert site.get()[0] == 200
    assert not (site.path / "logs" / f"access-{site.port}.log").exists()


def test_stop_kills_a_server_that_ignores_term(site):
    assert site.run("start.sh", GRACEFUL_TIMEOUT="1").returncode == 0
    pid = site.pid()
    os.killpg(pid, signal.SIGSTOP)  # TERM stays pending: it cannot stop
    result = site.run("stop.sh", GRACEFUL_TIMEOUT="1")
    assert result.returncode == 0, result.stderr
    assert "did not stop within 1 s: killed" in result.stderr
    assert result.stdout == f"stopped {site.path.name} (pid {pid})\n"
    assert site.servers() == []
    assert not listening(site.port)
    assert not site.pidfile().exists()


def test_pidfile_without_a_pid_is_stale(site):
    site.pidfile().parent.mkdir()
    site.pidfile().write_text("not a pid\n")
    result = site.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert "it holds no pid" in result.stdout
