"""stop.sh, run for real: a graceful stop of our server only, whatever state
the settings are in, that names every other server of the folder still running."""

import json
import os
import signal
import threading
import time

import pytest

from ops import serverctl
from tests.conftest import listening, wait_until


def test_stop_when_stopped_says_so(site):
    result = site.run("stop.sh")
    assert result.returncode == 0
    assert result.stdout == f"{site.path.name} is not running on port {site.port}\n"


def test_requests_in_flight_finish(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("import time\napp.add_url_rule('/slow', 'slow', ")
        wsgi.write("lambda: time.sleep(1.5) or 'done')\n")
    assert site.run("start.sh").returncode == 0
    answers = []
    slow = threading.Thread(target=lambda: answers.append(site.get("/slow")))
    slow.start()
    time.sleep(0.5)
    result = site.run("stop.sh")
    slow.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert answers == [(200, "done")]
    assert site.servers() == []


def test_stop_kills_a_server_that_ignores_term(site):
    assert site.run("start.sh", GRACEFUL_TIMEOUT="1").returncode == 0
    pid = site.pid()
    os.killpg(pid, signal.SIGSTOP)  # TERM stays pending: it cannot stop
    result = site.run("stop.sh", GRACEFUL_TIMEOUT="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{site.path.name} (pid {pid}) did not stop in time: killed\n"
        f"stopped {site.path.name} on port {site.port} (pid {pid})\n"
    )
    assert site.servers() == []
    assert not listening(site.port)
    assert not site.record().exists()
    assert not site.pidfile().exists()


def test_a_bad_env_file_warns_but_stops(started):
    (started.path / ".env").write_text("WEB_CONCURRENCY=many\nLOG_LEVEL=loud\n")
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert f"warning: WEB_CONCURRENCY='many' in {started.path / '.env'}" in (
        result.stderr
    )
    assert "using 2 meanwhile" in result.stderr
    assert result.stdout.startswith(f"stopped {started.path.name} on port")
    assert started.servers() == []


def test_a_broken_instance_config_does_not_prevent_a_stop(started):
    (started.path / "instance" / "config.py").write_text("BROKEN = (\n")
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert started.servers() == []


def test_stop_names_the_server_of_an_old_port(started, free_port):
    old, new = started.port, free_port()
    (started.path / ".env").write_text(f"PORT={new}\n")
    result = started.run("stop.sh", PORT="")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{started.path.name} is not running on port {new}\n"
        f"{started.path.name} also runs on port {old} (pid {started.pid(old)}): stop "
        f"it with PORT={old} sh stop.sh, or every one with sh stop.sh --all\n"
    )
    assert started.get(port=old)[0] == 200

    result = started.run("stop.sh", "--all", PORT="")
    assert result.returncode == 0, result.stderr
    assert f"stopped {started.path.name} on port {old}" in result.stdout
    assert started.servers() == []


def test_stop_all_with_none_running_says_so(site):
    result = site.run("stop.sh", "--all")
    assert result.returncode == 0
    assert result.stdout == f"{site.path.name} is not running\n"


def test_stop_all_stops_every_server(started, free_port):
    second = free_port()
    assert started.run("start.sh", PORT=str(second)).returncode == 0
    pids = {port: started.pid(port) for port in (started.port, second)}
    result = started.run("stop.sh", "--all")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(
        f"stopped {started.path.name} on port {port} (pid {pid})"
        for port, pid in pids.items()
    )
    assert started.servers() == []
    assert not listening(second)


def test_stop_also_ends_a_new_master_left_by_a_reload(started):
    pid = started.pid()
    # As a reload cut short would leave it: new settings recorded, then USR2.
    record = json.loads(started.record().read_text())
    started.record().write_text(json.dumps(dict(record, next=record["settings"])))
    os.kill(pid, signal.SIGUSR2)
    pidfile2 = started.path / "run" / f"app-{started.port}.pid.2"
    wait_until(pidfile2.exists, "no new master came")  # written once it loaded
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert started.servers() == []
    assert not listening(started.port)


@pytest.mark.parametrize(
    ("script", "option"),
    [("stop.sh", "--every"), ("start.sh", "--help"), ("restart.sh", "--all")],
)
def test_an_unknown_option_shows_the_usage_and_does_nothing(site, script, option):
    result = site.run(script, option)
    assert result.returncode == 2
    assert result.stderr == (
        "usage: sh start.sh | sh stop.sh [--all] | sh restart.sh | sh status.sh\n"
    )
    assert site.servers() == []


def test_an_env_file_that_is_not_utf8_does_not_prevent_a_stop(started):
    (started.path / ".env").write_bytes(b"# caf\xe9\n")
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert started.servers() == []


def test_a_record_that_is_not_a_record_is_removed(site):
    site.record().parent.mkdir()
    site.record().write_text("[]")
    assert site.run("status.sh").returncode == 4
    result = site.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert f"removed the stale record of port {site.port}: it cannot be read" in (
        result.stdout
    )
    assert not site.record().exists()


def test_stop_drains_first_when_asked(started):
    pid = started.pid()
    began = time.monotonic()
    stop = started.popen("stop.sh", DRAIN_SECONDS="2")
    wait_until(lambda: started.get("/health/ready")[0] == 503, "ready to say 503")
    assert started.get()[0] == 200, "ping stays the liveness answer"
    assert started.get("/nowhere")[0] == 404, "the app still serves the rest"
    out, err = stop.communicate(timeout=60)
    assert stop.returncode == 0, err
    assert time.monotonic() - began >= 2
    assert out.startswith(f"draining {started.path.name} for 2 s: ")
    assert f"stopped {started.path.name} on port {started.port} (pid {pid})" in out
    assert started.servers() == []
    assert not any((started.path / "run").glob("*.drain"))


def test_ctrl_c_while_draining_keeps_the_server(started):
    pid = started.pid()
    stop = started.popen("stop.sh", DRAIN_SECONDS="30")
    wait_until(lambda: started.get("/health/ready")[0] == 503, "ready to say 503")
    stop.send_signal(signal.SIGINT)
    out, err = stop.communicate(timeout=20)
    assert stop.returncode == 130
    assert err == f"interrupted: {started.path.name} keeps serving\n"
    assert started.servers() == [pid]
    assert started.get("/health/ready")[0] == 200


def test_an_unreadable_record_of_a_live_server_is_kept(started):
    pid = started.pid()
    started.record().write_text('{"folder": broken')
    result = started.run("stop.sh")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: run/app-{started.port}.json cannot be read, and pid {pid} of "
        f"run/app-{started.port}.pid runs: if it is {started.path.name}, stop it "
        f"(kill -TERM {pid}), then remove both files\n"
    )
    assert started.pidfile().exists()
    assert started.servers() == [pid]


def test_a_pid_is_signalled_only_while_its_start_time_is_unchanged():
    me = os.getpid()
    assert serverctl.unchanged({me: serverctl.started(me)}) == [me]
    # The same pid with another start time: the process that had it has ended
    # and the pid now names another program.
    assert serverctl.unchanged({me: "0"}) == []
