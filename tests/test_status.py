"""status.sh, run for real: every server of the folder listed, and an exit code
(LSB) for the server of the configured port."""

import os
import re
import signal
import socket
import time

from tests.conftest import Site, listening, wait_until


def test_not_running(site):
    result = site.run("status.sh")
    assert (result.returncode, result.stdout) == (
        3,
        f"{site.path.name} is not running on port {site.port}\n",
    )


def test_running_lists_port_pid_uptime_and_url(started):
    result = started.run("status.sh")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        f"{started.path.name} on port {started.port}: running "
        rf"\(pid {started.pid()}, up 0:00:0\d\) at http://127.0.0.1:{started.port}\n",
        result.stdout,
    )


def test_every_server_is_listed(started, free_port):
    second = free_port()
    assert started.run("start.sh", PORT=str(second)).returncode == 0
    result = started.run("status.sh")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(": running (pid " in line for line in lines)
    ports = {int(re.search(r"on port (\d+)", line)[1]) for line in lines}
    assert ports == {started.port, second}

    # Another port configured: its state decides the exit code; both still listed.
    other = free_port()
    result = started.run("status.sh", PORT=str(other))
    assert result.returncode == 3
    assert result.stdout.splitlines()[2:] == [
        f"{started.path.name} is not running on port {other}"
    ]


def test_not_answering_is_unknown(started):
    pid = started.pid()
    os.killpg(pid, signal.SIGSTOP)  # alive, but not answering
    try:
        result = started.run("status.sh")
    finally:
        os.killpg(pid, signal.SIGCONT)
    assert result.returncode == 4
    assert result.stdout.endswith(
        f" at http://127.0.0.1:{started.port}, but it does not answer\n"
    )


def test_dead_with_its_pidfile_left(started):
    pid = started.pid()
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while started.servers() or listening(started.port):
        assert time.monotonic() < deadline, "the killed server did not go"
        time.sleep(0.05)
    result = started.run("status.sh")
    assert result.returncode == 1
    assert result.stdout == (
        f"{started.path.name} on port {started.port}: dead: "
        f"run/app-{started.port}.pid is left (sh start.sh clears it)\n"
    )
    assert started.pid() == pid, "status only reports, it removes nothing"
    result = started.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"removed run/app-{started.port}.pid: it names no server of "
        f"{started.path.name}\n"
    )
    assert started.get()[0] == 200


def test_a_bad_env_file_warns_but_reports(started):
    (started.path / ".env").write_text("LOG_LEVEL=loud\n")
    result = started.run("status.sh")
    assert result.returncode == 0
    assert result.stderr.startswith("warning: LOG_LEVEL='loud' in ")
    assert ": running (pid " in result.stdout


def test_status_follows_a_reload(started):
    old = started.pid()
    assert started.run("restart.sh").returncode == 0
    new = started.pid()
    assert new != old
    result = started.run("status.sh")
    assert result.returncode == 0
    assert f": running (pid {new}, up " in result.stdout


def test_a_reload_cut_short_is_named(started):
    pid = started.pid()
    os.kill(pid, signal.SIGUSR2)  # a new master, never retired
    pidfile2 = started.path / "run" / f"app-{started.port}.pid.2"
    wait_until(pidfile2.exists, "no new master came")  # written once it loaded
    result = started.run("status.sh")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        f"{started.path.name} on port {started.port}: running "
        rf"\(pid {pid}, up 0:00:\d\d\) at http://127.0.0.1:{started.port}, "
        rf"with pid {int(pidfile2.read_text())} of a reload cut short "
        r"\(sh stop.sh ends both\)\n",
        result.stdout,
    )


def test_a_setting_from_the_environment_that_hides_env_is_noted(site):
    (site.path / ".env").write_text("WEB_CONCURRENCY=1\n")
    assert site.run("start.sh", WEB_CONCURRENCY="3").returncode == 0
    result = site.run("status.sh")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"note: pid {site.pid()} has WEB_CONCURRENCY from its environment, not "
        "from .env: sh stop.sh && sh start.sh to apply .env\n"
    )


def test_an_env_file_that_is_not_utf8_warns_but_reports(started):
    (started.path / ".env").write_bytes(b"# caf\xe9\nPORT=1\n")
    result = started.run("status.sh")
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert "cannot be read: 'utf-8' codec" in result.stderr


def test_a_renamed_folder_still_has_its_server(started, python_env):
    pid, name = started.pid(), "renamed 改名"
    renamed = Site(started.path.with_name(name), python_env, started.port)
    started.path.rename(renamed.path)  # the master's folder follows
    try:
        result = renamed.run("status.sh")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(
            f"{name} on port {renamed.port}: running (pid {pid}, up "
        )
        result = renamed.run("stop.sh")
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"stopped {name} on port {renamed.port} (pid {pid})\n"
        assert renamed.servers() == []
        assert not listening(renamed.port)
    finally:
        renamed.kill_all()


def test_a_port_held_by_another_program_is_said(site):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", site.port))
        taken.listen()
        result = site.run("status.sh")
    assert result.returncode == 3
    assert result.stdout == (
        f"{site.path.name} is not running on port {site.port}; "
        f"port {site.port} is in use\n"
    )
