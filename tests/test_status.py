"""status.sh, run for real: every server of the folder listed, and an exit code
(LSB) for the server of the configured port."""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import listening, without_root_powers


def test_not_running(site):
    result = site.run("status.sh")
    assert (result.returncode, result.stdout) == (
        3,
        f"{site.path.name} on port {site.port}: not running\n",
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
    result = started.run("status.sh", PORT=str(free_port()))
    assert result.returncode == 3
    assert len(result.stdout.splitlines()) == 3


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


def test_dead_with_its_record_left(started):
    pid = started.pid()
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while started.servers() or listening(started.port):
        assert time.monotonic() < deadline, "the killed server did not go"
        time.sleep(0.05)
    result = started.run("status.sh")
    assert result.returncode == 1
    assert result.stdout == (
        f"{started.path.name} on port {started.port}: dead: pid {pid} is not "
        "running (sh start.sh clears its record)\n"
    )
    assert started.record().exists(), "status only reports, it removes nothing"
    assert started.run("start.sh").returncode == 0
    assert started.get()[0] == 200


def test_an_unreadable_record_is_unknown(site):
    site.record().parent.mkdir()
    site.record().write_text("{not json")
    result = site.run("status.sh")
    assert result.returncode == 4
    assert result.stdout == (
        f"{site.path.name} on port {site.port}: status unknown: "
        f"run/app-{site.port}.json cannot be read\n"
    )


def test_a_bad_env_file_warns_but_reports(started):
    (started.path / ".env").write_text("LOG_LEVEL=loud\n")
    result = started.run("status.sh")
    assert result.returncode == 0
    assert result.stderr.startswith("warning: LOG_LEVEL='loud' in ")
    assert ": running (pid " in result.stdout


def test_the_record_follows_a_reload(started):
    assert started.run("restart.sh").returncode == 0
    record = json.loads(started.record().read_text())
    result = started.run("status.sh")
    assert result.returncode == 0
    assert f"(pid {record['pid']}, up " in result.stdout


def test_an_env_file_that_is_not_utf8_warns_but_reports(started):
    (started.path / ".env").write_bytes(b"# caf\xe9\nPORT=1\n")
    result = started.run("status.sh")
    assert result.returncode == 0, result.stderr
    assert "cannot be read: 'utf-8' codec" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_held_by_another_program_is_named(site):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", site.port))
        taken.listen()
        result = site.run("status.sh")
    me = f"{Path('/proc/self/comm').read_text().strip()} (pid {os.getpid()})"
    assert result.returncode == 3
    assert result.stdout == (
        f"{site.path.name} on port {site.port}: not running; port {site.port} "
        f"is in use by {me}\n"
    )


@pytest.mark.skipif(os.getuid() != 0, reason="another user's process needs root")
def test_a_port_held_by_another_users_program_is_still_reported(site):
    # The listening socket handed to a process of another user, here only.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", site.port))
        taken.listen()
        stranger = subprocess.Popen(
            ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
            + ["sleep", "60"],
            pass_fds=[taken.fileno()],
        )
    try:
        # Without the power to read other users' processes, ss names none.
        prefix = without_root_powers("sys_ptrace", "dac_read_search")
        result = site.run("status.sh", prefix=prefix)
    finally:
        stranger.kill()
        stranger.wait()
    assert result.returncode == 3
    assert result.stdout.endswith("is in use by another program\n"), result.stdout
