"""stop.sh, run for real: a graceful stop of our server only, whatever state
the settings are in, that names every other server of the folder still running."""

import os
import signal
import subprocess
import threading
import time

import pytest

from ops import ctl
from tests.conftest import listening, wait_until


def add_slow_route(site, seconds):
    """Give the copy's app /slow, which answers "done" after seconds."""
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("import time\napp.add_url_rule('/slow', 'slow', ")
        wsgi.write(f"lambda: time.sleep({seconds}) or 'done')\n")


def get_in_background(site, path):
    """Start a GET of path in a thread; return the thread and its answers."""
    answers = []
    thread = threading.Thread(target=lambda: answers.append(site.get(path)))
    thread.start()
    return thread, answers


def test_stop_when_stopped_says_so(site):
    result = site.run("stop.sh")
    assert result.returncode == 0
    assert result.stdout == f"{site.path.name} is not running on port {site.port}\n"


def stop_with_a_request_in_flight(site):
    """Run stop.sh while a GET of /slow is in flight: it gets its answer, and
    nothing is left."""
    slow, answers = get_in_background(site, "/slow")
    time.sleep(0.5)
    result = site.run("stop.sh")
    slow.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert answers == [(200, "done")]
    assert site.servers() == []


def test_requests_in_flight_finish(site):
    add_slow_route(site, 1.5)
    assert site.run("start.sh").returncode == 0
    stop_with_a_request_in_flight(site)


def test_stop_keeps_the_graceful_timeout_the_server_was_started_with(site):
    # .env says 1 s, the environment start.sh ran in said 8 s: the server
    # keeps its 8 s for life, whatever the environment of stop.sh.
    add_slow_route(site, 3)
    (site.path / ".env").write_text("GRACEFUL_TIMEOUT=1\n")
    assert site.run("start.sh", GRACEFUL_TIMEOUT="8").returncode == 0
    stop_with_a_request_in_flight(site)


def test_stop_kills_a_server_that_ignores_term_after_its_own_timeout(site):
    # Its own GRACEFUL_TIMEOUT (31 s), not .env's now, nor the default (30 s).
    assert site.run("start.sh", GRACEFUL_TIMEOUT="31").returncode == 0
    (site.path / ".env").write_text("GRACEFUL_TIMEOUT=1\n")
    pid = site.pid()
    os.killpg(pid, signal.SIGSTOP)  # TERM stays pending: it cannot stop
    began = time.monotonic()
    result = site.run("stop.sh")
    assert time.monotonic() - began > 41
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{site.path.name} did not stop within 41 s: killed\n"
        f"stopped {site.path.name} on port {site.port} (pid {pid})\n"
    )
    assert site.servers() == []
    assert not listening(site.port)


def test_a_bad_env_file_warns_but_stops(started):
    (started.path / ".env").write_text("WEB_CONCURRENCY=many\nLOG_LEVEL=loud\n")
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(
        f"warning: WEB_CONCURRENCY='many' in {started.path / '.env'}: "
    )
    assert result.stderr.count("; using the default meanwhile\n") == 2
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
        f"{started.path.name} also runs on port {old} (pid {started.pid(old)}): "
        f"PORT={old} sh stop.sh, or sh stop.sh --all\n"
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
    os.kill(pid, signal.SIGUSR2)  # as a reload cut short leaves it
    pidfile2 = started.path / "run" / f"app-{started.port}.pid.2"
    wait_until(pidfile2.exists, "no new master came")  # written once it loaded
    new = int(pidfile2.read_text())
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"stopped {started.path.name} on port {started.port} (pid {pid})\n"
    )
    assert started.servers() == []
    assert ctl.proc(pid) is None
    assert ctl.proc(new) is None
    assert not listening(started.port)
    assert list((started.path / "run").glob("app-*.pid*")) == []


def test_a_lost_pidfile_leaves_the_server_alone_and_names_it(started):
    pid = started.pid()
    started.pidfile().unlink()
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"{started.path.name} is not running on port {started.port}; "
        f"port {started.port} is in use\n"
    )
    assert started.servers() == [pid]
    assert started.get()[0] == 200


@pytest.mark.parametrize("text", ["", "garbage\n", "-1\n", "0\n"])
def test_a_pidfile_that_names_no_process_is_removed(site, text):
    site.pidfile().parent.mkdir(mode=0o700)
    site.pidfile().write_text(text)
    assert site.run("status.sh").returncode == 1
    result = site.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"removed run/app-{site.port}.pid: ")
    assert result.stdout.endswith(f"is not running on port {site.port}\n")
    assert "Traceback" not in result.stderr
    assert not site.pidfile().exists()


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


def test_a_process_is_ours_only_while_it_lives():
    sleeper = subprocess.Popen(["sleep", "60"])
    seen = ctl.proc(sleeper.pid)
    assert seen.argv == ["sleep", "60"]
    assert (seen.ppid, seen.cwd) == (os.getpid(), os.getcwd())
    sleeper.kill()
    # A zombie, not yet reaped: its pid names no live process of ours.
    wait_until(lambda: ctl.proc(sleeper.pid) is None, "the killed sleep to end")
    sleeper.wait()
    assert ctl.proc(sleeper.pid) is None


def test_a_bad_port_stops_nothing_for_its_default_names_another_server(started):
    result = started.run("stop.sh", PORT="50000x")
    assert result.returncode == 1
    assert result.stderr.startswith("error: PORT='50000x' in the environment: ")
    assert started.get()[0] == 200
    assert started.run("stop.sh", "--all", PORT="50000x").returncode == 0
    assert started.servers() == []


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_pidfile_or_log_that_is_no_file_is_one_line_and_no_hang(site, kind):
    run, logs = site.path / "run", site.path / "logs"
    run.mkdir(mode=0o700)
    logs.mkdir(mode=0o700)
    if kind == "folder":
        site.pidfile().mkdir()
    else:
        os.mkfifo(logs / f"app-{site.port}.log")
    for script in ("status.sh", "stop.sh", "start.sh"):
        result = site.run(script)
        assert len(result.stderr.splitlines()) <= 1, result.stderr
        assert "Traceback" not in result.stderr
    assert site.servers() == []
