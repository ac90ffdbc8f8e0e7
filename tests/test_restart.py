"""restart.sh, run for real: new code and settings by a new master beside the
old one, no request failed, and whenever the reload cannot be done, or fails,
one line saying why while the old server serves on."""

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ops import ctl
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


def in_background(site, path):
    """GET path in a thread; return the thread and the list its answer goes to."""
    answers = []
    thread = threading.Thread(target=lambda: answers.append(site.get(path)))
    thread.start()
    return thread, answers


def write_code(site, *lines):
    """Append lines to the copy's wsgi.py: new code on disk."""
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write("".join(line + "\n" for line in lines))


def in_the_new_master(*lines):
    """Code lines that run only in the new master of a reload (gunicorn gives
    it GUNICORN_PID); `gunicorn --check-config` and a start run none of them."""
    return ["import os, time", "if 'GUNICORN_PID' in os.environ:"] + [
        f"    {line}" for line in lines
    ]


def add_slow_route(site, seconds):
    """Give the copy's app a /slow page that takes seconds to answer."""
    write_code(
        site,
        "import time",
        f"app.add_url_rule('/slow', 'slow', lambda: time.sleep({seconds}) or 'done')",
    )


def write_env(site, text):
    """Write the copy's .env."""
    (site.path / ".env").write_text(text)


def pidfile2(site):
    """gunicorn's pidfile of the new master during a reload."""
    return site.path / "run" / f"app-{site.port}.pid.2"


def wait_for_workers(site, master, count):
    """Wait until master has count live workers."""
    what = f"master {master} did not get {count}"
    wait_until(lambda: len(site.workers(master)) == count, what)


def environ(pid):
    """The environment pid started with (nothing once it is gone)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return []


def forked_masters(site, old):
    """The children of old that are new masters (GUNICORN_PID names old)."""
    return [
        pid
        for pid in site.workers(old)
        if f"GUNICORN_PID={old}".encode() in environ(pid)
    ]


def pidfile_names(site, pid):
    """Say whether the pidfile names pid (gunicorn's old master removes it as it
    exits, and the new one renames its own in place up to a second later)."""
    with contextlib.suppress(FileNotFoundError):
        return site.pid() == pid
    return False


def reload_by_hand(site):
    """Send the USR2 restart.sh sends, and no more; return the pids of the old
    master and of the new one, once that one serves."""
    old = site.pid()
    os.kill(old, signal.SIGUSR2)
    wait_until(pidfile2(site).exists, "the new master to load")
    new = int(pidfile2(site).read_text())
    wait_for_workers(site, new, 2)
    return old, new


def wait_for_a_new_master(site, old):
    """Wait until old has forked a new master (still loading, maybe); return it."""
    wait_until(lambda: forked_masters(site, old), "no new master came")
    return forked_masters(site, old)[0]


def serves_on(site, pid, workers=2):
    """Assert that master pid alone serves: its workers all there, answering."""
    assert site.servers() == [pid]
    assert site.pid() == pid
    wait_for_workers(site, pid, workers)
    for _ in range(10):
        assert site.get()[0] == 200


def refused(site, result, why, pid, workers=2):
    """Assert that restart.sh refused with one line, why, and pid serves on."""
    assert result.returncode == 1
    # A worker that gets its TERM before gunicorn has set its signal handlers
    # never sees it, and holds its new master past the undo's deadline.
    assert result.stdout in ("", "the new master did not stop within 5 s: killed\n")
    assert result.stderr == f"error: {why}\n"
    serves_on(site, pid, workers)


def reloaded(site, result, old, workers=2):
    """Assert that restart.sh reloaded: old retired, a new master alone serves."""
    assert result.returncode == 0, result.stderr
    new = site.pid()
    assert new != old
    assert result.stdout == (
        f"reloaded {site.path.name} at http://127.0.0.1:{site.port}: "
        f"pid {new} serves, pid {old} retired\n"
    )
    assert not pidfile2(site).exists()
    serves_on(site, new, workers)
    return new


def not_as_started(name, pid):
    """restart.sh's refusal when name differs from the environment pid had."""
    return (
        f"{name} is not as pid {pid} was started with, and a reload keeps that: "
        "give restart.sh the same, or sh stop.sh && sh start.sh"
    )


# New code, delivered or refused ---------------------------------------------


def test_restart_under_load_fails_no_request(started):
    old = started.pid()
    write_code(started, 'app.config["APP_NAME"] = "version 2"')
    result, counts = under_load(started, "restart.sh")
    reloaded(started, result, old)
    assert counts["ok"] > 100
    assert counts["failed"] == 0
    assert '"app":"version 2"' in started.get()[1]


def test_refused_code_leaves_a_server_that_survives_its_workers(started):
    pid = started.pid()
    write_code(started, "raise RuntimeError('half-deployed')")
    result = started.run("restart.sh")
    why = (
        "the new code does not load: RuntimeError: half-deployed (wsgi.py, line 13); "
        f"pid {pid} serves on"
    )
    refused(started, result, why, pid)
    assert forked_masters(started, pid) == [], "a USR2 went out"
    # A worker that dies later is replaced from the master's loaded app, never
    # from the broken code on disk: the server stays up.
    for worker in started.workers():
        os.kill(worker, signal.SIGKILL)
    serves_on(started, pid)


def test_code_that_fails_only_in_the_new_master_keeps_the_old(started):
    pid = started.pid()
    # gunicorn --check-config passes; the new master fails.
    write_code(started, *in_the_new_master("raise OSError('no db')"))
    result = started.run("restart.sh")
    why = (
        "the new code did not start: it exited: OSError: no db (wsgi.py, line 15); "
        f"pid {pid} serves on"
    )
    refused(started, result, why, pid)
    assert not pidfile2(started).exists()
    assert started.run("stop.sh").returncode == 0
    assert started.servers() == []


def test_new_code_that_answers_500_is_refused(started):
    pid = started.pid()
    write_code(started, "app.before_request(lambda: 1 / 0)")
    result = started.run("restart.sh")
    why = (
        "the new code did not start: it answers 500 at /health/ping; "
        f"pid {pid} serves on"
    )
    refused(started, result, why, pid)


def test_new_code_whose_workers_crash_is_refused_by_the_start_timeout(started):
    pid = started.pid()
    write_env(started, "START_TIMEOUT=3\n")
    write_code(started, *in_the_new_master("app.before_request(lambda: os._exit(1))"))
    began = time.monotonic()
    result = started.run("restart.sh")
    took = time.monotonic() - began
    why = (
        "the new code did not start: gave up after 3 s waiting for the new "
        f"master to answer; pid {pid} serves on"
    )
    refused(started, result, why, pid)
    assert took < 15, "it waited past START_TIMEOUT"


def test_ctrl_c_during_a_restart_keeps_the_old_server(started):
    pid = started.pid()
    write_code(started, *in_the_new_master("time.sleep(60)"))
    restart = started.popen("restart.sh")
    wait_for_a_new_master(started, pid)
    restart.send_signal(signal.SIGINT)
    out, err = restart.communicate(timeout=20)
    assert restart.returncode == 130
    assert (out, err) == ("", f"interrupted: pid {pid} serves on\n")
    assert forked_masters(started, pid) == []
    serves_on(started, pid)


def test_a_new_master_that_will_not_stop_is_killed_alone(started):
    # A new master shares its old master's process group: a KILL of that
    # group would take the server down with it.
    pid = started.pid()
    write_env(started, "START_TIMEOUT=2\n")
    write_code(started, *in_the_new_master("time.sleep(60)"))
    restart = started.popen("restart.sh")
    new = wait_for_a_new_master(started, pid)
    os.kill(new, signal.SIGSTOP)  # deaf to the TERM of the undo
    out, err = restart.communicate(timeout=30)
    assert restart.returncode == 1
    assert err.endswith(f"; pid {pid} serves on\n"), err
    assert ctl.proc(new) is None
    serves_on(started, pid)


def test_two_restarts_in_a_row(started):
    for _ in range(2):
        old = started.pid()
        reloaded(started, started.run("restart.sh"), old)


def test_restart_when_stopped_starts(site):
    result = site.run("restart.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"started {site.path.name} (pid {site.pid()}) at http://127.0.0.1:"
        f"{site.port}, logs in logs/app-{site.port}.log\n"
    )
    assert site.get()[0] == 200


def test_ctl_reload_reloads_but_never_starts(site):
    # systemctl reload runs it: the same reload as restart.sh's.
    ctl = [sys.executable, str(site.path / "ops" / "ctl.py"), "reload"]
    env = {**site.env, "PORT": str(site.port)}
    result = subprocess.run(ctl, env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {site.path.name} is not running on port {site.port}\n"
    )
    assert site.servers() == []
    assert site.run("start.sh").returncode == 0
    old = site.pid()
    result = subprocess.run(ctl, env=env, capture_output=True, text=True, timeout=90)
    reloaded(site, result, old)


@pytest.mark.parametrize("script", ["restart.sh", "stop.sh"])
def test_sessions_survive_restarts_and_servers_agree(started, free_port, script):
    write_code(
        started,
        "from flask import session",
        "@app.get('/visits')",
        "def visits():",
        "    session['n'] = session.get('n', 0) + 1",
        "    return {'n': session['n']}",
    )
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


def test_restart_after_the_log_was_moved_away(started):
    log = started.path / "logs" / f"app-{started.port}.log"
    log.rename(started.path / "moved.log")
    old = started.pid()
    reloaded(started, started.run("restart.sh"), old)


# Settings: .env, and the environment the server was started with ------------


def test_restart_picks_up_an_edited_env_file(started):
    old = started.pid()
    write_env(started, "FLASK_APP_NAME='renamed shop'\n")
    reloaded(started, started.run("restart.sh"), old)
    assert '"app":"renamed shop"' in started.get()[1]


def test_restart_applies_server_settings_edited_in_env_file(started):
    old = started.pid()
    write_env(started, "WEB_CONCURRENCY=3\nACCESS_LOG=off\n")
    result = started.run("restart.sh")
    assert result.returncode == 0, result.stderr
    new = started.pid()
    assert new != old
    wait_for_workers(started, new, 3)
    before = started.log()
    assert started.get("/health/ready")[0] == 200
    assert "GET /health/ready" not in started.log()[len(before) :], "access log on"


@pytest.mark.parametrize(
    ("name", "value"), [("WEB_CONCURRENCY", "3"), ("FLASK_APP_NAME", "other shop")]
)
def test_a_variable_given_only_to_restart_is_refused(started, name, value):
    # The new master would inherit the first master's environment, not this.
    pid = started.pid()
    result = started.run("restart.sh", **{name: value})
    refused(started, result, not_as_started(name, pid), pid)


@pytest.mark.parametrize(
    ("name", "value", "in_env_file"),
    [("WEB_CONCURRENCY", "3", "4"), ("FLASK_APP_NAME", "shop A", "shop B")],
)
def test_the_environment_of_the_start_hides_env_file(site, name, value, in_env_file):
    assert site.run("start.sh", **{name: value}).returncode == 0
    pid = site.pid()
    write_env(site, f"{name}='{in_env_file}'\n")
    note = (
        f"note: pid {pid} has {name} from its environment, not from .env: "
        "sh stop.sh && sh start.sh to apply .env\n"
    )
    status = site.run("status.sh")
    assert status.returncode == 0
    assert status.stderr == note
    workers = int(value) if name == "WEB_CONCURRENCY" else 2
    # Without the variable: refused, naming it.
    result = site.run("restart.sh")
    refused(site, result, not_as_started(name, pid), pid, workers)
    # With it: reloaded, with the note, and the start's value kept.
    result = site.run("restart.sh", **{name: value})
    assert result.stderr == note
    result.stderr = ""
    reloaded(site, result, pid, workers)
    if name == "FLASK_APP_NAME":
        assert f'"app":"{value}"' in site.get()[1]


def test_requests_in_flight_get_the_graceful_timeout_the_server_started_with(site):
    add_slow_route(site, 3)
    assert site.run("start.sh", GRACEFUL_TIMEOUT="8").returncode == 0
    pid = site.pid()
    # Without GRACEFUL_TIMEOUT=8: the reload would not keep what it says.
    slow, answers = in_background(site, "/slow")
    time.sleep(0.5)
    result = site.run("restart.sh")
    refused(site, result, not_as_started("GRACEFUL_TIMEOUT", pid), pid)
    slow.join(timeout=30)
    assert answers == [(200, "done")]
    # With it: the old master finishes the request before it is gone.
    slow, answers = in_background(site, "/slow")
    time.sleep(0.5)
    began = time.monotonic()
    result = site.run("restart.sh", GRACEFUL_TIMEOUT="8")
    took = time.monotonic() - began
    reloaded(site, result, pid)
    slow.join(timeout=30)
    assert answers == [(200, "done")]
    assert took > 2, "it did not wait for the old master to finish its request"


# Where the server listens ---------------------------------------------------


def test_a_new_host_needs_a_stop_and_a_start(started):
    pid = started.pid()
    write_env(started, "HOST=0.0.0.0\n")
    result = started.run("restart.sh")
    why = (
        f"pid {pid} listens on 127.0.0.1: a new HOST needs a stop and a start: "
        "sh stop.sh && sh start.sh"
    )
    refused(started, result, why, pid)


def test_a_new_port_starts_there_and_names_the_old_server(started, free_port):
    old, new = started.port, free_port()
    write_env(started, f"PORT={new}\n")
    result = started.run("restart.sh", PORT="")
    assert result.returncode == 0, result.stderr
    name = started.path.name
    assert result.stdout == (
        f"started {name} (pid {started.pid(new)}) at http://127.0.0.1:{new}, "
        f"logs in logs/app-{new}.log\n"
        f"{name} also runs on port {old} (pid {started.pid(old)}): "
        f"PORT={old} sh stop.sh, or sh stop.sh --all\n"
    )
    assert started.get(port=new)[0] == 200
    assert started.get(port=old)[0] == 200


def test_a_renamed_project_folder_is_refused_and_still_stops(started):
    pid = started.pid()
    moved = started.path.with_name("moved app")
    started.path.rename(moved)
    started.path = moved  # and the fixture's clean-up looks there
    result = started.run("restart.sh")
    why = f"the folder or venv moved since pid {pid} started: sh stop.sh && sh start.sh"
    refused(started, result, why, pid)
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"stopped moved app on port {started.port} (pid {pid})\n"
    assert started.servers() == []
    assert not listening(started.port)


# Reloads cut short, and processes that die ----------------------------------


def test_the_old_master_dying_during_a_reload_leaves_the_new_one(started):
    old = started.pid()
    write_code(started, *in_the_new_master("time.sleep(1)"))
    restart = started.popen("restart.sh")
    new = wait_for_a_new_master(started, old)
    time.sleep(0.3)  # restart.sh has seen it (it looks every 10 ms); it loads
    os.kill(old, signal.SIGKILL)
    out, err = restart.communicate(timeout=60)
    assert restart.returncode == 0, err
    assert started.pid() == new
    serves_on(started, new)


def test_a_reload_while_old_workers_die(started):
    old = started.pid()
    write_code(started, *in_the_new_master("time.sleep(0.5)"))
    restart = started.popen("restart.sh")
    new = wait_for_a_new_master(started, old)
    # Old workers that crash meanwhile are replaced by new children of the old
    # master: none of them may be taken for the new master.
    while restart.poll() is None:
        for worker in set(started.workers(old)) - {new}:
            with contextlib.suppress(OSError):
                os.kill(worker, signal.SIGKILL)
        time.sleep(0.02)
    out, err = restart.communicate(timeout=20)
    assert restart.returncode == 0, err
    assert started.pid() == new
    serves_on(started, new)


def cut_short(site, while_loading):
    """Leave site as a restart.sh killed (kill -9) mid-reload leaves it: a new
    master forked by the old one, still loading its code or (not
    while_loading: killed before its TERM to the old one) serving beside it.
    Return the pids of both masters."""
    if not while_loading:
        return reload_by_hand(site)
    old = site.pid()
    write_code(site, *in_the_new_master("time.sleep(2)"))
    restart = site.popen("restart.sh")
    new = wait_for_a_new_master(site, old)
    restart.kill()
    restart.communicate(timeout=20)
    return old, new


@pytest.mark.parametrize("while_loading", [True, False])
def test_a_reload_cut_short_is_refused_and_stop_ends_both(started, while_loading):
    old, new = cut_short(started, while_loading)
    result = started.run("restart.sh")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: pid {new}, of a reload cut short, runs: sh stop.sh && sh start.sh\n"
    )
    assert started.pid() == old
    assert forked_masters(started, old) == [new]
    result = started.run("stop.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"stopped {started.path.name} on port {started.port} (pid {old})\n"
    )
    assert started.servers() == []
    assert not listening(started.port)
    assert not started.pidfile().exists()
    assert not pidfile2(started).exists()


def test_a_restart_after_gunicorn_finished_a_reload_cut_short(started):
    # restart.sh killed after its TERM to the old master: gunicorn goes on.
    old, new = reload_by_hand(started)
    os.kill(old, signal.SIGTERM)
    wait_until(lambda: pidfile_names(started, new), "the promotion")
    reloaded(started, started.run("restart.sh"), new)


@pytest.mark.parametrize("owner", ["a dead process", "another program"])
def test_a_stale_second_pidfile_does_not_stop_a_reload(started, owner):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        if owner == "a dead process":
            stranger.kill()
            stranger.wait()
        pidfile2(started).write_text(f"{stranger.pid}\n")
        old = started.pid()
        result = started.run("restart.sh")
        assert result.stdout.startswith(
            f"removed run/app-{started.port}.pid.2: it names no server of "
            f"{started.path.name}\n"
        )
        result.stdout = result.stdout.split("\n", 1)[1]
        reloaded(started, result, old)
        if owner == "another program":
            assert stranger.poll() is None, "the stranger was signalled"
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("script", ["restart.sh", "start.sh"])
def test_a_drain_left_by_a_killed_stop_is_undone(started, script):
    (started.path / "run" / f"app-{started.port}.drain").touch()
    assert started.get("/health/ready")[0] == 503
    result = started.run(script)
    assert result.returncode == 0, result.stderr
    assert started.get("/health/ready")[0] == 200


@pytest.mark.parametrize("script", ["restart.sh", "stop.sh"])
def test_a_script_run_while_the_new_master_awaits_its_promotion(started, script):
    # The old master gone (a restart.sh killed after its TERM), and the
    # pidfile with it; the new master renames its run/app-PORT.pid.2 within a
    # second (here: once it may run again).
    old, new = reload_by_hand(started)
    os.kill(new, signal.SIGSTOP)
    os.kill(old, signal.SIGTERM)
    wait_until(lambda: not started.pidfile().exists(), "the old master to go")
    resume = threading.Timer(1, os.kill, (new, signal.SIGCONT))
    resume.start()
    try:
        result = started.run(script)
    finally:
        resume.join()
    assert result.returncode == 0, result.stderr
    if script == "stop.sh":
        assert result.stdout == (
            f"stopped {started.path.name} on port {started.port} (pid {new})\n"
        )
        assert started.servers() == []
        assert not listening(started.port)
    else:
        reloaded(started, result, new)


def test_a_gunicorn_option_given_only_to_restart_is_refused(started):
    pid = started.pid()
    result = started.run("restart.sh", GUNICORN_CMD_ARGS="--workers 5")
    why = (
        f"GUNICORN_CMD_ARGS is not as pid {pid} was started with, and a reload "
        "keeps that: give restart.sh the same, or sh stop.sh && sh start.sh"
    )
    refused(started, result, why, pid)


def test_settings_only_the_scripts_read_may_differ(started):
    old = started.pid()
    result = started.run("restart.sh", START_TIMEOUT="60", DRAIN_SECONDS="0")
    reloaded(started, result, old)


def test_another_python_environment_is_refused(started, tmp_path):
    pid = started.pid()
    other = tmp_path / "other-venv"
    (other / "bin").mkdir(parents=True)
    venv = Path(started.env["VIRTUAL_ENV"]) / "bin"
    (other / "bin" / "python").symlink_to(venv / "python")
    shutil.copy(venv / "gunicorn", other / "bin" / "gunicorn")
    result = started.run("restart.sh", VIRTUAL_ENV=str(other))
    assert result.returncode == 1
    assert f"runs {started.env['VIRTUAL_ENV']}/bin/gunicorn, not " in result.stderr
    serves_on(started, pid)
