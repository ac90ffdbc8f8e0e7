"""start.sh, run for real: it returns 0 only once the app answers, says why
when it cannot start, leaving nothing behind, and acts on no process but a
gunicorn master this folder launched for the pidfile.

Each test runs the scripts of a copy of the project (its path has a space and
Chinese characters) against a real gunicorn on a free port of 127.0.0.1, from
another folder, with bounded waits, and kills whatever it started.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Site, listening, wait_until, without_root_powers


def assert_nothing_left(site):
    """No server or pidfile of the site's port is left."""
    assert site.servers() == []
    assert not site.pidfile().exists()
    assert not listening(site.port)


def forge_pidfile(site, pid, age=0):
    """Write pid into the site's pidfile, as if written age seconds ago."""
    site.pidfile().parent.mkdir(mode=0o700, exist_ok=True)
    site.pidfile().write_text(f"{pid}\n")
    if age:
        then = time.time() - age
        os.utime(site.pidfile(), (then, then))


def removed(site, pid):
    """The line start.sh and stop.sh print as they remove a pidfile not ours."""
    return f"removed run/app-{site.port}.pid: it names no server of {site.path.name}\n"


def assert_never_signalled(site, stranger, age=0):
    """Run status.sh, stop.sh and start.sh with the pidfile naming stranger
    (written age seconds ago): each one leaves stranger alone."""
    name, port = site.path.name, site.port
    forge_pidfile(site, stranger.pid, age)
    result = site.run("status.sh")
    assert (result.returncode, result.stdout) == (
        1,
        f"{name} on port {port}: dead: run/app-{port}.pid is left "
        "(sh start.sh clears it)\n",
    ), result.stderr
    assert site.pidfile().exists(), "status only reports, it removes nothing"

    result = site.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == removed(site, stranger.pid) + (
        f"{name} is not running on port {port}\n"
    )
    assert not site.pidfile().exists()

    forge_pidfile(site, stranger.pid, age)
    result = site.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(removed(site, stranger.pid) + "started ")
    assert site.pid() != stranger.pid
    assert site.get()[0] == 200
    assert site.run("stop.sh").returncode == 0
    assert stranger.poll() is None, "a process that is not ours was signalled"


def test_start_ping_stop(site):
    result = site.run("start.sh")
    assert result.returncode == 0, result.stderr
    pid = site.pid()
    assert result.stdout == (
        f"started {site.path.name} (pid {pid}) at http://127.0.0.1:{site.port}, "
        f"logs in logs/app-{site.port}.log\n"
    )
    status, body = site.get()
    assert status == 200
    assert f'"app":"{site.path.name}"' in body
    assert site.servers() == [pid]

    result = site.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"stopped {site.path.name} on port {site.port} (pid {pid})\n"
    )
    assert_nothing_left(site)
    assert "Shutting down: Master" in site.log()


def test_one_log_holds_gunicorns_the_apps_and_the_access_lines(started):
    assert started.get("/nowhere")[0] == 404
    assert started.run("stop.sh").returncode == 0  # every line is written
    log = started.log()
    assert "Booting worker with pid" in log  # gunicorn's
    assert "no SECRET_KEY configured: made one in " in log  # the app's
    assert '"GET /nowhere HTTP/1.1" 404' in log  # the access line
    assert os.listdir(started.path / "logs") == [f"app-{started.port}.log"]


@pytest.mark.parametrize(
    ("setting", "logged", "left_out"),
    [
        ("ACCESS_LOG", [], ["GET /nowhere", "GET /health/ping"]),
        ("HEALTH_ACCESS_LOG", ["GET /nowhere"], ["GET /health/ping"]),
    ],
)
def test_access_lines_can_be_turned_off(site, setting, logged, left_out):
    result = site.run("start.sh", **{setting: "off"})
    assert result.returncode == 0, result.stderr
    assert site.get()[0] == 200
    assert site.get("/nowhere")[0] == 404
    assert site.run("stop.sh").returncode == 0  # every line is written
    log = site.log()
    assert "Booting worker with pid" in log
    assert [line for line in logged if line not in log] == []
    assert [line for line in left_out if line in log] == []


def test_scripts_run_from_the_project_folder_too(site):
    assert site.run("start.sh", cwd=site.path).returncode == 0
    assert site.get()[0] == 200
    assert site.run("stop.sh", cwd=site.path).returncode == 0
    assert site.servers() == []


def test_start_when_running_starts_nothing(started):
    pid = started.pid()
    result = started.run("start.sh")
    assert result.returncode == 0
    assert result.stdout == (
        f"{started.path.name} is already running (pid {pid}) "
        f"at http://127.0.0.1:{started.port}\n"
    )
    assert started.servers() == [pid]


def test_starts_racing_each_other_give_one_server(site):
    racers = [site.popen("start.sh") for _ in range(4)]
    outputs = [racer.communicate(timeout=90) for racer in racers]
    assert [racer.returncode for racer in racers] == [0] * 4, outputs
    said = [out for out, _ in outputs]
    assert sum(out.startswith("started ") for out in said) == 1, said
    assert sum(" is already running " in out for out in said) == 3, said
    assert site.servers() == [site.pid()]
    assert site.get()[0] == 200


def test_start_works_the_same_at_every_log_level(site):
    for level in ("critical", "error", "warning", "debug"):
        result = site.run("start.sh", LOG_LEVEL=level, WEB_CONCURRENCY="3")
        assert result.returncode == 0, (level, result.stderr)
        assert site.get()[0] == 200
        assert len(site.servers()) == 1
        assert site.run("stop.sh").returncode == 0


def test_pidfile_of_a_dead_server_is_removed(site):
    dead = subprocess.Popen(["true"])
    dead.wait()
    forge_pidfile(site, dead.pid)
    result = site.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(removed(site, dead.pid) + "started ")
    assert site.pid() != dead.pid
    assert site.get()[0] == 200


def test_pidfile_naming_another_program_of_the_folder_never_leads_to_it(site):
    # A process of this very folder and user whose command line names gunicorn.
    stranger = subprocess.Popen(
        ["tail", "-f", "gunicorn.conf.py"], cwd=site.path, stdout=subprocess.DEVNULL
    )
    try:
        assert_never_signalled(site, stranger)
    finally:
        stranger.kill()
        stranger.wait()


def test_pidfile_naming_a_process_started_after_it_never_leads_to_it(site):
    # Everything about it is as a master of ours has it, but its start: after
    # the pidfile was written, so the pidfile cannot be its.
    argv = ["-c", "import time; time.sleep(60)", "--pid", f"run/app-{site.port}.pid"]
    forge_pidfile(site, os.getpid(), age=60)  # the pidfile exists first
    stranger = subprocess.Popen([sys.executable, *argv], cwd=site.path)
    try:
        assert_never_signalled(site, stranger, age=60)
    finally:
        stranger.kill()
        stranger.wait()


def test_pidfile_naming_one_of_our_workers_means_its_master(started):
    pid, worker = started.pid(), started.workers()[0]
    started.pidfile().write_text(f"{worker}\n")
    result = started.run("status.sh")
    assert result.returncode == 0, result.stderr
    assert f": running (pid {pid}, up " in result.stdout
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"stopped {started.path.name} on port {started.port} (pid {pid})\n"
    )
    assert started.servers() == []
    assert not listening(started.port)


def test_stop_leaves_no_pidfile_behind(started):
    # gunicorn removes its pidfile only while it names the master itself.
    started.pidfile().write_text(f"{started.workers()[0]}\n")
    assert started.run("stop.sh").returncode == 0
    assert_nothing_left(started)
    result = started.run("status.sh")
    assert result.returncode == 3, result.stdout


def test_a_copy_of_the_folder_neither_stops_nor_reports_the_original(
    started, tmp_path, python_env
):
    # A copy with run/ too: its pidfile names the original's master.
    copy = Site(tmp_path / "copy", python_env, started.port)
    shutil.copytree(started.path, copy.path)
    pid, port = started.pid(), started.port
    assert copy.pid() == pid
    try:
        result = copy.run("status.sh")
        assert (result.returncode, result.stdout) == (
            1,
            f"copy on port {port}: dead: run/app-{port}.pid is left "
            "(sh start.sh clears it)\n",
        ), result.stderr

        result = copy.run("stop.sh")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(
            f"removed run/app-{port}.pid: it names no server of copy\n"
            f"copy is not running on port {port}; "
            f"port {port} is in use"
        )

        result = copy.run("start.sh")
        assert result.returncode == 1
        assert result.stderr.startswith(f"error: port {port} is in use")
        assert copy.servers() == []
        assert started.servers() == [pid]
        assert started.get()[0] == 200
        assert started.run("status.sh").returncode == 0
    finally:
        copy.kill_all()


def test_port_in_use_is_said(site):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", site.port))
        taken.listen()
        began = time.monotonic()
        result = site.run("start.sh")
        assert time.monotonic() - began < 5
    assert result.returncode == 1
    assert result.stderr == (
        f"error: port {site.port} is in use: use another, "
        f"e.g. PORT={site.port + 1} sh start.sh\n"
    )
    assert_nothing_left(site)


def test_port_in_use_by_another_server_of_this_app(tmp_path, site, python_env):
    other = Site(tmp_path / "other", python_env, site.port)
    shutil.copytree(site.path, other.path)
    try:
        assert other.run("start.sh").returncode == 0
        result = site.run("start.sh")
        assert result.returncode == 1
        assert result.stderr.startswith(f"error: port {site.port} is in use: ")
        assert site.servers() == []
        assert other.get()[0] == 200
    finally:
        other.kill_all()


def test_address_not_on_this_host(site):
    result = site.run("start.sh", HOST="192.0.2.1")  # TEST-NET-1: on no host
    assert result.returncode == 1
    assert result.stderr == (
        "error: 192.0.2.1 is not an address of this host: use one it has "
        "(ip address), or 0.0.0.0 for all\n"
    )
    assert_nothing_left(site)


@pytest.mark.skipif(
    int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()) <= 81,
    reason="every user may listen on port 81 here",
)
def test_port_below_1024_without_permission(site):
    prefix = without_root_powers("net_bind_service")
    result = site.run("start.sh", prefix=prefix, PORT="81")
    assert result.returncode == 1
    assert result.stderr == (
        "error: port 81 needs root (below 1024): use PORT=5000, "
        "with nginx in front for port 80\n"
    )
    assert site.servers() == []


def test_folder_not_writable(site):
    site.path.joinpath("run").mkdir()
    site.path.joinpath("run").chmod(0o555)
    prefix = without_root_powers("dac_override", "dac_read_search")
    result = site.run("start.sh", prefix=prefix)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: cannot write {site.path}/run/lock: permission denied "
        "(act as the folder's owner)\n"
    )
    assert site.servers() == []


def test_start_under_an_open_umask_keeps_its_files_private(site):
    result = site.run("start.sh", prefix=["sh", "-c", 'umask 000 && exec "$@"', "-"])
    assert result.returncode == 0, result.stderr
    assert site.get("/nowhere")[0] == 404  # an access line too
    mode = lambda path: stat.S_IMODE(path.stat().st_mode)  # noqa: E731
    assert mode(site.path / "run") == 0o700
    assert mode(site.path / "logs") == 0o700
    log = site.path / "logs" / f"app-{site.port}.log"
    assert mode(log) & ~0o640 == 0, oct(mode(log))
    files = [*(site.path / "run").iterdir(), *(site.path / "logs").iterdir()]
    assert {path.name: oct(mode(path)) for path in files if mode(path) & 0o022} == {}


@pytest.mark.skipif(os.getuid() != 0, reason="mounting a small disk needs root")
def test_disk_full(site):
    run = site.path / "run"
    run.mkdir(mode=0o700)
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", run]
    subprocess.run(mount, check=True)
    try:
        with open(run / "filler", "wb") as filler, pytest.raises(OSError):
            filler.write(b"\0" * 128 * 1024)
        result = site.run("start.sh")
        assert result.returncode == 1
        assert result.stderr.startswith("error: start failed: gunicorn exited (1): ")
        assert "No space left on device" in result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert site.servers() == []
    finally:
        subprocess.run(["umount", run], check=True)


@contextlib.contextmanager
def read_only(folder, how):
    """Make folder read-only for the scripts: closed to writes ("chmod"), or
    on a read-only file system, as in a read-only container ("mount")."""
    if how == "chmod":
        folder.chmod(0o555)
        yield without_root_powers("dac_override", "dac_read_search")
        return
    subprocess.run(["mount", "--bind", folder, folder], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", folder], check=True)
        yield []
    finally:
        subprocess.run(["umount", folder], check=True)


@pytest.mark.parametrize(
    "how",
    [
        "chmod",
        pytest.param(
            "mount",
            marks=pytest.mark.skipif(os.getuid() != 0, reason="mounting needs root"),
        ),
    ],
)
def test_no_key_and_a_read_only_instance_folder_name_the_setting(site, how):
    with read_only(site.path / "instance", how) as prefix:
        result = site.run("start.sh", prefix=prefix)
        assert result.returncode == 1
        assert "ConfigError: no SECRET_KEY is configured and " in result.stderr
        assert "set FLASK_SECRET_KEY, or SECRET_KEY in instance/config.py" in (
            result.stderr
        )
        assert len(result.stderr.splitlines()) == 1
        assert_nothing_left(site)
        result = site.run("start.sh", prefix=prefix, FLASK_SECRET_KEY="from the env")
        assert result.returncode == 0, result.stderr
        assert site.run("stop.sh").returncode == 0


def test_app_import_error_fails_with_the_error(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("import no_such_module\n")
    result = site.run("start.sh")
    assert result.returncode == 1
    assert result.stderr == (
        "error: start failed: gunicorn exited (1): ModuleNotFoundError: "
        "No module named 'no_such_module' (wsgi.py, line 13) "
        f"(logs/app-{site.port}.log)\n"
    )
    assert_nothing_left(site)
    assert "no_such_module" in site.log(), "the error must stay in the log"


def test_app_that_never_answers_times_out(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("import time\ntime.sleep(60)\n")
    began = time.monotonic()
    result = site.run("start.sh", START_TIMEOUT="2")
    assert time.monotonic() - began < 15
    assert result.returncode == 1
    assert result.stderr == (
        "error: start failed: gave up after 2 s waiting for the app to answer "
        f"(logs/app-{site.port}.log)\n"
    )
    assert_nothing_left(site)


def test_ctrl_c_while_starting_stops_what_was_started(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("import time\ntime.sleep(60)\n")
    start = site.popen("start.sh")
    wait_until(site.servers, "gunicorn was not launched")
    start.send_signal(signal.SIGINT)
    out, err = start.communicate(timeout=20)
    assert start.returncode == 130
    assert err == "interrupted: stopped the server that was starting\n"
    assert "Traceback" not in out + err
    assert_nothing_left(site)


def test_two_ctrl_c_while_starting_leave_nothing(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("import time\ntime.sleep(60)\n")
    start = site.popen("start.sh")
    wait_until(site.servers, "gunicorn was not launched")
    start.send_signal(signal.SIGINT)
    time.sleep(0.01)
    start.send_signal(signal.SIGINT)
    start.communicate(timeout=20)
    assert start.returncode == 130
    assert_nothing_left(site)


def test_broken_instance_config_names_file_and_line(site):
    (site.path / "instance" / "config.py").write_text('APP_NAME = "x"\nBROKEN = (\n')
    result = site.run("start.sh")
    assert result.returncode == 1
    assert "instance/config.py line 2" in result.stderr
    assert_nothing_left(site)


@pytest.mark.parametrize(
    ("variable", "value"), [("WEB_CONCURRENCY", "abc"), ("PORT", "http")]
)
def test_bad_setting_is_one_line_naming_it(site, variable, value):
    result = site.run("start.sh", **{variable: value})
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {variable}='{value}' in the environment")
    assert len(result.stderr.splitlines()) == 1
    assert site.servers() == []


def test_bad_setting_in_env_file_names_the_file(site):
    (site.path / ".env").write_text("WEB_CONCURRENCY=many\n")
    result = site.run("start.sh")
    assert result.returncode == 1
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
    assert result.returncode == 1
    assert "gunicorn not found" in result.stderr
    assert "pip install -r requirements.txt" in result.stderr


def test_stop_then_start_at_once_after_serving_requests(started):
    for _ in range(20):
        assert started.get()[0] == 200
    assert started.run("stop.sh").returncode == 0
    result = started.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert started.get()[0] == 200


def test_two_servers_from_one_folder(started, free_port):
    second = free_port()
    result = started.run("start.sh", PORT=str(second))
    assert result.returncode == 0, result.stderr
    assert started.get(port=second)[0] == 200
    assert started.pid(second) != started.pid()

    assert started.run("stop.sh", PORT=str(second)).returncode == 0
    assert not listening(second)
    assert started.get()[0] == 200


def test_start_right_after_the_master_was_killed(started):
    pid = started.pid()
    os.kill(pid, signal.SIGKILL)  # its workers serve on for a moment
    result = started.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(removed(started, pid) + "started ")
    assert started.servers() == [started.pid()]
    assert started.get()[0] == 200


def test_a_symlink_to_a_script_runs_it(site, tmp_path):
    link = tmp_path / "start-my-app"
    link.symlink_to(site.path / "start.sh")
    result = subprocess.run(
        ["sh", str(link)],
        env={**site.env, "PORT": str(site.port)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert site.get()[0] == 200


def test_a_removed_master_header_hook_fails_the_start(site):
    # A later definition replaces the one gunicorn.conf.py ships: no answer
    # then names its master, and start.sh cannot tell that the app is ours.
    with open(site.path / "gunicorn.conf.py", "a") as conf:
        conf.write("\n\ndef post_worker_init(worker):\n    pass\n")
    result = site.run("start.sh", START_TIMEOUT="2")
    assert result.returncode == 1
    assert "gave up after 2 s waiting for the app to answer" in result.stderr
    assert_nothing_left(site)


def test_start_works_with_trusted_hosts_set(site):
    hosts = '["example.com"]'  # as the README writes it, without 127.0.0.1
    result = site.run("start.sh", FLASK_TRUSTED_HOSTS=hosts)
    assert result.returncode == 0, result.stderr
    assert site.get()[0] == 200
    status, body = site.get("/")  # Host: 127.0.0.1:PORT is not trusted
    assert status == 400
    assert json.loads(body)["status"] == 400
