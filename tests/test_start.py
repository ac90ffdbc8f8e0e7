"""start.sh, run for real: it returns 0 only once the app answers, and says why
when it cannot start, leaving nothing behind.

Each test runs the scripts of a copy of the project (its path has a space and
Chinese characters) against a real gunicorn on a free port of 127.0.0.1, from
another folder, with bounded waits, and kills whatever it started.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Site, listening, wait_until, without_root_powers


def assert_nothing_left(site):
    """No server, record or pidfile of the site's port is left."""
    assert site.servers() == []
    assert not site.record().exists()
    assert not site.pidfile().exists()
    assert not listening(site.port)


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
    assert site.servers() == [pid]

    result = site.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"stopped {site.path.name} on port {site.port} (pid {pid})\n"
    )
    assert_nothing_left(site)
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


def test_record_of_a_dead_server_is_removed(site):
    dead = subprocess.Popen(["true"])
    dead.wait()
    site.forge_record(dead.pid)
    site.pidfile().write_text(f"{dead.pid}\n")
    result = site.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert f"removed the stale record of port {site.port}: pid {dead.pid}" in (
        result.stdout
    )
    assert site.pid() != dead.pid
    assert site.get()[0] == 200


@pytest.mark.parametrize("where", ["record", "pidfile", "both"])
def test_files_naming_another_process_never_lead_to_it(site, where):
    # A process of this very folder whose command line names gunicorn.
    stranger = subprocess.Popen(["tail", "-f", "gunicorn.conf.py"], cwd=site.path)
    try:
        site.record().parent.mkdir()
        if where in ("record", "both"):
            site.forge_record(stranger.pid)
        if where in ("pidfile", "both"):
            site.pidfile().write_text(f"{stranger.pid}\n")
        result = site.run("stop.sh")
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith(f"is not running on port {site.port}\n")
        assert site.run("start.sh").returncode == 0
        assert site.get()[0] == 200
        assert site.run("stop.sh").returncode == 0
        assert stranger.poll() is None, "a process that is not ours was signalled"
    finally:
        stranger.kill()
        stranger.wait()


def test_pidfile_naming_one_of_our_workers_changes_nothing(started):
    worker = started.workers()[0]
    started.pidfile().write_text(f"{worker}\n")
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert_nothing_left(started)


def test_another_projects_server_is_left_alone(tmp_path, site, python_env, free_port):
    other = Site(tmp_path / "other", python_env, free_port())
    shutil.copytree(site.path, other.path)
    try:
        assert other.run("start.sh").returncode == 0
        site.record().parent.mkdir(exist_ok=True)
        site.record().write_text(other.record().read_text())
        site.pidfile().write_text(other.pidfile().read_text())
        result = site.run("start.sh")
        assert result.returncode == 0, result.stderr
        assert site.run("stop.sh").returncode == 0
        assert other.get()[0] == 200
    finally:
        other.kill_all()


def test_port_in_use_names_the_program(site):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", site.port))
        taken.listen()
        began = time.monotonic()
        result = site.run("start.sh")
        assert time.monotonic() - began < 5
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: port {site.port} is in use by ")
    if shutil.which("ss"):
        assert f"(pid {os.getpid()})" in result.stderr
    assert f"PORT={site.port + 1} sh start.sh" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert_nothing_left(site)


def test_address_not_on_this_host(site):
    result = site.run("start.sh", HOST="192.0.2.1")  # TEST-NET-1: on no host
    assert result.returncode == 1
    assert result.stderr == (
        "error: 192.0.2.1 is not an address of this host: use one it has "
        "(ip address), 127.0.0.1, or 0.0.0.0 for all\n"
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
    assert result.stderr.startswith("error: permission denied for port 81: ports ")
    assert "PORT=5000" in result.stderr
    assert site.servers() == []


def test_folder_not_writable(site):
    site.path.joinpath("run").mkdir()
    site.path.joinpath("run").chmod(0o555)
    prefix = without_root_powers("dac_override", "dac_read_search")
    result = site.run("start.sh", prefix=prefix)
    assert result.returncode == 1
    assert result.stderr == (
        "error: cannot write run/lock: permission denied "
        "(run as the folder's owner, or chown it)\n"
    )
    assert site.servers() == []


@pytest.mark.skipif(os.getuid() != 0, reason="mounting a small disk needs root")
def test_disk_full(site):
    run = site.path / "run"
    run.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", run], check=True)
    try:
        with open(run / "filler", "wb") as filler, pytest.raises(OSError):
            filler.write(b"\0" * 128 * 1024)
        result = site.run("start.sh")
        assert result.returncode == 1
        assert result.stderr == (
            f"error: cannot write run/app-{site.port}.json: the disk is full\n"
        )
        assert site.servers() == []
    finally:
        subprocess.run(["umount", run], check=True)


def test_no_key_and_a_read_only_instance_folder_name_the_setting(site):
    (site.path / "instance").chmod(0o555)  # as in a read-only container
    prefix = without_root_powers("dac_override", "dac_read_search")
    result = site.run("start.sh", prefix=prefix)
    assert result.returncode == 1
    assert "ConfigError: no SECRET_KEY is configured and " in result.stderr
    assert "set FLASK_SECRET_KEY, or SECRET_KEY in instance/config.py" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert_nothing_left(site)
    result = site.run("start.sh", prefix=prefix, FLASK_SECRET_KEY="from the env")
    assert result.returncode == 0, result.stderr


def test_app_import_error_fails_with_the_error(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("import no_such_module\n")
    result = site.run("start.sh")
    assert result.returncode == 1
    assert result.stderr.startswith("error: start failed: gunicorn exited with code")
    assert "ModuleNotFoundError: No module named 'no_such_module'" in result.stderr
    assert f"(see logs/app-{site.port}.log)" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert_nothing_left(site)
    assert "no_such_module" in site.log(), "the error must stay in the log"


def test_app_that_never_answers_times_out(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("import time\ntime.sleep(60)\n")
    began = time.monotonic()
    result = site.run("start.sh", START_TIMEOUT="2")
    assert time.monotonic() - began < 15
    assert result.returncode == 1
    assert "gave up after 2 s waiting for the app to answer" in result.stderr
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


def test_access_log_can_be_turned_off(site):
    result = site.run("start.sh", ACCESS_LOG="off")
    assert result.returncode == 0, result.stderr
    assert site.get()[0] == 200
    assert not (site.path / "logs" / f"access-{site.port}.log").exists()


def test_start_right_after_the_master_was_killed(started):
    pid = started.pid()
    os.kill(pid, signal.SIGKILL)  # its workers serve on for a moment
    result = started.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert f"removed the stale record of port {started.port}: pid {pid}" in (
        result.stdout
    )
    assert started.servers() == [started.pid()]
    assert started.get()[0] == 200


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


def test_port_in_use_by_another_server_names_its_master(tmp_path, site, python_env):
    other = Site(tmp_path / "other", python_env, site.port)
    shutil.copytree(site.path, other.path)
    try:
        assert other.run("start.sh").returncode == 0
        result = site.run("start.sh")
        assert result.returncode == 1
        if shutil.which("ss"):
            assert f"(pid {other.pid()}): stop it" in result.stderr
        assert site.servers() == []
    finally:
        other.kill_all()


def test_a_removed_master_header_hook_is_named(site):
    # A later definition replaces the one gunicorn.conf.py ships.
    with open(site.path / "gunicorn.conf.py", "a") as conf:
        conf.write("\n\ndef post_worker_init(worker):\n    pass\n")
    result = site.run("start.sh", START_TIMEOUT="10")
    assert result.returncode == 1
    assert "without the X-Master-Pid header that post_worker_init" in result.stderr
    assert_nothing_left(site)


def test_start_works_with_trusted_hosts_set(site):
    hosts = '["example.com"]'  # as the README writes it, without 127.0.0.1
    result = site.run("start.sh", FLASK_TRUSTED_HOSTS=hosts)
    assert result.returncode == 0, result.stderr
    assert site.get()[0] == 200
    status, body = site.get("/")  # Host: 127.0.0.1:PORT is not trusted
    assert status == 400
    assert json.loads(body)["status"] == 400
