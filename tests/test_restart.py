"""restart.sh, run for real: new code and settings by a new master beside the
old one, no request failed, and a server that cannot fall over after a refused
reload."""

import contextlib
import http.client
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ops import serverctl
from tests.conftest import listening, wait_until


def load(site, stop, counts, keep_alive):
    """Send GETs until stop is set (at most 3,000): each on a new connection, or
    all on one kept-alive connection (which reconnects when the server says
    "Connection: close", as HTTP clients do)."""
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
    for _ in range(3000):
        if stop.is_set():
            break
        try:
            connection.request("GET", "/health/ping")
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
        except OSError:
            ok = False
        counts["ok" if ok else "failed"] += 1
        if not keep_alive or not ok:
            connection.close()
    connection.close()


def under_load(site, script, **env):
    """Run script while six clients (three kept alive) load the site; return
    the finished script and the request counts."""
    stop, counts = threading.Event(), {"ok": 0, "failed": 0}
    clients = [
        threading.Thread(target=load, args=(site, stop, counts, n % 2 == 0))
        for n in range(6)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(0.3)
        result = site.run(script, **env)
        time.sleep(0.3)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
    return result, counts


def write_code(site, line):
    """Append a line to the copy's wsgi.py: new code on disk."""
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write(line + "\n")


def wait_for_workers(site, master, count):
    """Wait until master has count live workers."""
    what = f"master {master} did not get {count}"
    wait_until(lambda: len(site.workers(master)) == count, what)


def test_restart_under_load_fails_no_request(started):
    old = started.pid()
    write_code(started, 'app.config["APP_NAME"] = "version 2"')
    result, counts = under_load(started, "restart.sh")
    assert result.returncode == 0, result.stderr
    new = started.pid()
    assert new != old
    assert result.stdout == (
        f"reloaded {started.path.name} at http://127.0.0.1:{started.port}: "
        f"pid {new} serves, pid {old} retired\n"
    )
    assert counts["ok"] > 100
    assert counts["failed"] == 0
    assert '"app":"version 2"' in started.get()[1]
    assert started.servers() == [new]
    assert not (started.path / "run" / f"app-{started.port}.pid.2").exists()
    assert int(started.pidfile().read_text()) == new


def test_refused_code_leaves_a_server_that_survives_its_workers(started):
    pid = started.pid()
    write_code(started, "raise RuntimeError('half-deployed')")
    result = started.run("restart.sh")
    assert result.returncode == 1
    assert result.stderr == (
        "error: the new code did not start: it exited: Error: half-deployed; "
        f"{started.path.name} (pid {pid}) keeps running the old code\n"
    )
    assert started.pid() == pid
    # A worker that dies later is replaced from the master's loaded app, never
    # from the broken code on disk: the server stays up.
    for worker in started.workers():
        os.kill(worker, signal.SIGKILL)
    wait_for_workers(started, pid, 2)
    for _ in range(10):
        assert started.get()[0] == 200
    assert started.servers() == [pid]


def test_code_that_fails_only_in_the_new_master_keeps_the_old(started):
    pid = started.pid()
    # gunicorn --check-config passes; the new master (it has GUNICORN_PID) fails.
    write_code(started, "import os")
    write_code(started, "if 'GUNICORN_PID' in os.environ: raise OSError('no db')")
    result = started.run("restart.sh")
    assert result.returncode == 1
    assert result.stderr == (
        "error: the new code did not start: it exited: OSError: no db; "
        f"{started.path.name} (pid {pid}) keeps running the old code\n"
    )
    assert started.servers() == [pid]
    assert json.loads(started.record().read_text())["pid"] == pid
    assert started.get()[0] == 200
    assert started.run("stop.sh").returncode == 0
    assert started.servers() == []


def test_ctrl_c_during_a_restart_keeps_the_old_server(started):
    pid = started.pid()
    write_code(started, "import os, time")
    write_code(started, "if 'GUNICORN_PID' in os.environ: time.sleep(60)")
    restart = started.popen("restart.sh")
    # Its two workers and the new master.
    wait_until(lambda: len(started.workers(pid)) == 3, "no new master came")
    restart.send_signal(signal.SIGINT)
    out, err = restart.communicate(timeout=20)
    assert restart.returncode == 130
    assert err == (
        f"interrupted: {started.path.name} (pid {pid}) keeps running the old code\n"
    )
    wait_for_workers(started, pid, 2)
    assert started.servers() == [pid]
    assert started.get()[0] == 200


def test_restart_applies_changed_server_settings(started):
    result = started.run("restart.sh", WEB_CONCURRENCY="3", ACCESS_LOG="off")
    assert result.returncode == 0, result.stderr
    new = started.pid()
    assert len(started.workers(new)) == 3
    access = started.path / "logs" / f"access-{started.port}.log"
    before = access.read_text()
    assert started.get()[0] == 200
    assert access.read_text() == before, "the access log is off now"


def test_restart_picks_up_an_edited_env_file(started):
    (started.path / ".env").write_text("FLASK_APP_NAME='renamed shop'\n")
    assert started.run("restart.sh").returncode == 0
    assert '"app":"renamed shop"' in started.get()[1]


def test_two_restarts_in_a_row(started):
    for _ in range(2):
        result = started.run("restart.sh")
        assert result.returncode == 0, result.stderr
        assert started.servers() == [started.pid()]
    assert started.get()[0] == 200


def test_a_new_host_needs_a_stop_and_a_start(started):
    pid = started.pid()
    result = started.run("restart.sh", HOST="0.0.0.0")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: HOST is now 0.0.0.0, but {started.path.name} (pid {pid}) listens "
        "on 127.0.0.1: a new address needs a stop and a start: "
        "sh stop.sh && sh start.sh\n"
    )
    assert started.servers() == [pid]


def test_a_new_port_starts_there_and_names_the_old_server(started, free_port):
    old, new = started.port, free_port()
    (started.path / ".env").write_text(f"PORT={new}\n")
    result = started.run("restart.sh", PORT="")
    assert result.returncode == 0, result.stderr
    name = started.path.name
    assert result.stdout == (
        f"started {name} (pid {started.pid(new)}) at http://127.0.0.1:{new}, "
        "logs in logs/\n"
        f"{name} also runs on port {old} (pid {started.pid(old)}): stop it with "
        f"PORT={old} sh stop.sh, or every one with sh stop.sh --all\n"
    )
    assert started.get(port=new)[0] == 200


def test_restart_when_stopped_starts(site):
    result = site.run("restart.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"started {site.path.name}")
    assert site.get()[0] == 200


@pytest.mark.parametrize("script", ["restart.sh", "stop.sh"])
def test_sessions_survive_restarts_and_servers_agree(started, free_port, script):
    write_code(started, "from flask import session")
    write_code(started, "@app.get('/visits')")
    write_code(started, "def visits():")
    write_code(started, "    session['n'] = session.get('n', 0) + 1")
    write_code(started, "    return {'n': session['n']}")
    assert started.run("restart.sh").returncode == 0
    key = started.path / "instance" / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600

    def visit(port, cookie=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/visits", headers={"Cookie": cookie or ""})
        response = connection.getresponse()
        count = json.loads(response.read())["n"]
        connection.close()
        return count, response.getheader("Set-Cookie").split(";")[0]

    count, cookie = visit(started.port)
    assert count == 1
    if script == "stop.sh":
        assert started.run("stop.sh").returncode == 0
    assert started.run("restart.sh").returncode == 0  # starts it when stopped
    count, cookie = visit(started.port, cookie)
    assert count == 2
    second = free_port()
    assert started.run("start.sh", PORT=str(second)).returncode == 0
    assert visit(second, cookie)[0] == 3


def test_new_code_that_answers_500_is_refused(started):
    pid = started.pid()
    write_code(started, "app.before_request(lambda: 1 / 0)")
    result = started.run("restart.sh")
    assert result.returncode == 1
    assert result.stderr == (
        "error: the new code did not start: the app answers 500 at /health/ping; "
        f"{started.path.name} (pid {pid}) keeps running the old code\n"
    )
    assert started.servers() == [pid]
    wait_for_workers(started, pid, 2)
    for _ in range(10):
        assert started.get()[0] == 200


def test_a_late_usr2_starts_no_stray_master(started):
    pid = started.pid()
    os.kill(pid, signal.SIGSTOP)  # the USR2 stays pending past the deadline
    try:
        result = started.run("restart.sh", START_TIMEOUT="1")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert result.returncode == 1
    assert "gave up after 1 s waiting for the new master to answer" in result.stderr
    deadline = time.monotonic() + 10
    while "new code comes by sh restart.sh" not in started.log():
        assert time.monotonic() < deadline, "the late new master did not refuse"
        time.sleep(0.1)
    wait_for_workers(started, pid, 2)
    assert started.servers() == [pid]
    assert started.run("restart.sh").returncode == 0


def test_the_old_master_dying_during_a_reload_leaves_the_new_one(started):
    old = started.pid()
    write_code(started, "import os, time")
    write_code(started, "if 'GUNICORN_PID' in os.environ: time.sleep(1)")
    restart = started.popen("restart.sh")
    # Its two workers and the new master.
    wait_until(lambda: len(started.workers(old)) == 3, "no new master came")
    os.kill(old, signal.SIGKILL)
    out, err = restart.communicate(timeout=60)
    assert restart.returncode == 0, err
    new = started.pid()
    assert new != old
    assert started.servers() == [new]
    assert started.get()[0] == 200


def test_restart_after_the_log_was_moved_away(started):
    started.path.joinpath("logs", f"app-{started.port}.log").rename(
        started.path / "moved.log"
    )
    result = started.run("restart.sh")
    assert result.returncode == 0, result.stderr
    assert started.get()[0] == 200


def new_master(site, old):
    """The new master old forked for a reload, once it runs the new code."""
    pidfile2 = site.path / "run" / f"app-{site.port}.pid.2"
    wait_until(pidfile2.exists, "no new master came")  # written once it loaded
    return int(pidfile2.read_text())


def test_a_reload_killed_while_the_new_master_loads_is_redone(started):
    old = started.pid()
    write_code(started, "import os, time")
    write_code(started, "if 'GUNICORN_PID' in os.environ: time.sleep(1)")
    restart = started.popen("restart.sh")
    wait_until(lambda: len(started.workers(old)) == 3, "no new master came")
    restart.kill()  # kill -9: nothing is undone
    restart.communicate(timeout=20)
    leftover = new_master(started, old)
    result = started.run("restart.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"stopping pid {leftover}, a new master left by a reload cut short\n"
    )
    new = started.pid()
    assert new not in (old, leftover)
    assert started.servers() == [new]
    assert len(started.workers(new)) == 2
    assert started.get()[0] == 200


def cut_short_reload(site):
    """Leave site as restart.sh leaves it when killed after it recorded the new
    master and before it sent the TERM: the new master recorded and serving,
    the old one retiring. Return the pids of both."""
    old = site.pid()
    record = json.loads(site.record().read_text())
    site.record().write_text(json.dumps(dict(record, next=record["settings"])))
    os.kill(old, signal.SIGUSR2)
    new = new_master(site, old)
    wait_for_workers(site, new, 2)
    retiring = {key: record[key] for key in ("folder", "pid", "started")}
    now = dict(record, pid=new, started=serverctl.started(new), retiring=retiring)
    site.record().write_text(json.dumps(now))
    return old, new


@pytest.mark.parametrize("script", ["restart.sh", "stop.sh"])
def test_a_reload_cut_short_before_the_old_master_retired(started, script):
    old, new = cut_short_reload(started)
    result = started.run(script)
    assert result.returncode == 0, result.stderr
    if script == "stop.sh":
        assert started.servers() == []
        assert not listening(started.port)
    else:
        assert started.servers() == [started.pid()]
        assert started.pid() not in (old, new)
        assert started.get()[0] == 200


def test_new_code_whose_workers_crash_is_refused_at_once(started):
    pid = started.pid()
    write_code(started, "import os")
    write_code(started, "if 'GUNICORN_PID' in os.environ:")
    write_code(started, "    app.before_request(lambda: os._exit(1))")
    began = time.monotonic()
    result, counts = under_load(started, "restart.sh", START_TIMEOUT="60")
    took = time.monotonic() - began
    assert result.returncode == 1
    assert result.stderr.startswith("error: the new code did not start: its worker ")
    assert result.stderr.endswith(
        f"; {started.path.name} (pid {pid}) keeps running the old code\n"
    )
    assert took < 15, "it waited for the new code to answer"
    # Each crash fails the request under way: the crashes stop at the first.
    assert counts["failed"] < 20, counts
    assert started.servers() == [pid]
    wait_for_workers(started, pid, 2)
    assert started.get()[0] == 200


def test_a_reload_while_old_workers_die(started):
    old = started.pid()
    write_code(started, "import os, time")
    write_code(started, "if 'GUNICORN_PID' in os.environ: time.sleep(0.5)")
    restart = started.popen("restart.sh")
    # Old workers that crash meanwhile are replaced by new children of the old
    # master: none of them may be taken for the new master.
    while restart.poll() is None:
        for worker in started.workers(old):
            if f"GUNICORN_PID={old}".encode() not in environ(worker):
                with contextlib.suppress(OSError):
                    os.kill(worker, signal.SIGKILL)
        time.sleep(0.02)
    out, err = restart.communicate(timeout=20)
    assert restart.returncode == 0, err
    assert started.servers() == [started.pid()] != [old]
    assert started.get()[0] == 200


def environ(pid):
    """The environment pid started with (nothing once it is gone)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return []


def test_a_reload_cut_short_after_the_old_master_left(started):
    # As restart.sh leaves it when killed after the TERM of the old master: the
    # old one gone, the promotion pending.
    old, new = cut_short_reload(started)
    os.kill(old, signal.SIGTERM)
    wait_until(lambda: not serverctl.started(old), "the old master to go")
    result = started.run("restart.sh")  # at once: before the promotion
    assert result.returncode == 0, result.stderr
    assert started.servers() == [started.pid()]
    assert started.pid() not in (old, new)


def test_a_stale_second_pidfile_does_not_stop_a_reload(started):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        pidfile2 = started.path / "run" / f"app-{started.port}.pid.2"
        pidfile2.write_text(f"{stranger.pid}\n")
        result = started.run("restart.sh")
        assert result.returncode == 0, result.stderr
        assert stranger.poll() is None, "the stranger was signalled"
    finally:
        stranger.kill()
        stranger.wait()


def test_a_start_undoes_a_drain_left_by_a_killed_stop(started):
    (started.path / "run" / f"app-{started.port}.drain").touch()
    assert started.get("/health/ready")[0] == 503
    result = started.run("start.sh")
    assert result.returncode == 0, result.stderr
    assert "left by a stop.sh cut short: ready again" in result.stdout
    assert started.get("/health/ready")[0] == 200
