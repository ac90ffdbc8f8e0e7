"""Never act for another user: root refuses a project that another user can
steer (its run/, logs/, instance/, .env, a folder above it), so it follows none
of that user's links and signals none of the pids that user names; and the
logrotate recipe's postrotate acts as the app's user. Run as root, with a
second user that the tests make and remove."""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT, Site, copy_project

pytestmark = [
    pytest.mark.lifecycle,
    pytest.mark.skipif(os.getuid() != 0, reason="needs root, to make a second user"),
]
STRANGER = "starter-stranger"


@pytest.fixture(scope="module")
def stranger():
    """A second user, made for these tests and removed after them."""
    subprocess.run(["userdel", STRANGER], capture_output=True)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        + [STRANGER],
        check=True,
    )
    yield pwd.getpwnam(STRANGER)
    subprocess.run(["userdel", STRANGER], check=True)


@pytest.fixture
def shared(python_env, free_port):
    """A copy of the project, root's, in a folder every user can reach (the
    tests' own tmp_path is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="starter-"))
    base.chmod(0o755)
    site = Site(copy_project(base / "myapp"), python_env, free_port())
    yield site
    site.kill_all()
    shutil.rmtree(base)


@pytest.fixture
def victim():
    """A process of root's that no script may signal."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def give(path, user, mode=0o700):
    """Make path a folder (if missing) of user's, with mode."""
    path.mkdir(exist_ok=True)
    os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(mode)


def as_user(user, path, text):
    """Write text to path as user would (owned by user)."""
    path.write_text(text)
    os.chown(path, user.pw_uid, user.pw_gid)


def assert_refused(result, place, script):
    """One line naming the place and how to act as its owner; exit 1."""
    assert result.returncode == (4 if script == "status.sh" else 1), result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{place} is open to {STRANGER}" in lines[0]
    assert lines[0].endswith(
        f"runuser -u {STRANGER} -- sh {script}, or chown root '{place}'"
    )


@pytest.mark.parametrize("script", ["start.sh", "stop.sh", "restart.sh", "status.sh"])
def test_root_refuses_a_run_folder_another_user_owns(shared, stranger, victim, script):
    run = shared.path / "run"
    give(run, stranger)
    # The stranger names root's process as the server, and a lock that is a link
    # to a file of root's.
    as_user(stranger, shared.pidfile(), f"{victim.pid}\n")
    target = shared.path.parent / "roots-file"
    target.write_text("root's\n")
    (run / "lock").symlink_to(target)
    result = shared.run(script)
    assert_refused(result, run, script)
    assert victim.poll() is None, "root signalled the pid another user named"
    assert target.read_text() == "root's\n"
    assert shared.servers() == []


def test_root_refuses_a_log_folder_another_user_owns(shared, stranger):
    logs = shared.path / "logs"
    give(logs, stranger)
    target = shared.path.parent / "roots-file"
    target.write_text("root's\n")
    (logs / f"app-{shared.port}.log").symlink_to(target)
    assert_refused(shared.run("start.sh"), logs, "start.sh")
    assert target.read_text() == "root's\n"
    assert shared.servers() == []


@pytest.mark.parametrize("name", [".env", "instance", "gunicorn.conf.py", "venv"])
def test_root_refuses_what_it_would_run_or_read_of_another_user(shared, stranger, name):
    path = shared.path / name
    if name == "venv":
        path.mkdir()
    elif not path.exists():
        path.write_text("")
    os.chown(path, stranger.pw_uid, stranger.pw_gid)
    assert_refused(shared.run("start.sh"), path, "start.sh")
    assert shared.servers() == []


def test_root_refuses_a_project_inside_another_users_folder(shared, stranger):
    # The stranger could move the project away and put another in its place.
    os.chown(shared.path.parent, stranger.pw_uid, stranger.pw_gid)
    assert_refused(shared.run("status.sh"), shared.path.parent, "status.sh")


def test_root_refuses_a_file_others_can_write(shared):
    (shared.path / "config.py").chmod(0o666)
    result = shared.run("start.sh")
    assert result.returncode == 1
    assert "config.py is open to others" in result.stderr
    assert result.stderr.rstrip().endswith(f"chmod go-w '{shared.path}/config.py'")


def test_a_user_refuses_a_run_folder_others_can_write(shared, stranger):
    give(shared.path / "run", stranger, mode=0o777)
    ctl = ["runuser", "-u", STRANGER, "--", "/usr/bin/python3", "ops/ctl.py"]
    result = subprocess.run(
        [*ctl, "status"], cwd=shared.path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 4, result.stderr
    assert (
        "must be a folder (not a link) only you can write: chmod go-w" in result.stderr
    )


def as_stranger(stranger):
    """Command words that run a program as the stranger (setpriv execs it: the
    pid is the program's)."""
    ids = [f"--reuid={stranger.pw_uid}", f"--regid={stranger.pw_gid}"]
    return ["setpriv", *ids, "--clear-groups"]


def test_logrotate_postrotate_signals_as_the_app_user_and_only_its_server(
    shared, stranger, victim, free_port
):
    give(shared.path / "run", stranger)
    give(shared.path / "logs", stranger)
    # The stranger's server, as far as the scripts can tell: its folder, and
    # the pidfile of its port on its command line. USR1 ends it (Python's
    # default), which tells that the signal came.
    argv = ["/usr/bin/python3", "-c", "import time; time.sleep(60)"]
    argv += ["--pid", f"run/app-{shared.port}.pid"]
    server = subprocess.Popen([*as_stranger(stranger), *argv], cwd=shared.path)
    try:
        time.sleep(0.2)  # the pidfile is written after the server starts
        as_user(stranger, shared.pidfile(), f"{server.pid}\n")
        # And a pidfile naming root's process, for another port.
        as_user(stranger, shared.pidfile(free_port()), f"{victim.pid}\n")
        # Root itself refuses: run/ is the stranger's.
        python = shared.env["VIRTUAL_ENV"] + "/bin/python"
        as_root = subprocess.run(
            [python, "ops/ctl.py", "reopen"],
            cwd=shared.path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert as_root.returncode == 1
        assert f"run is {STRANGER}'s: act as {STRANGER}" in as_root.stderr
        assert server.poll() is None
        # The recipe's postrotate, as logrotate (root) runs it.
        recipe = (PROJECT / "deploy" / "logrotate.conf").read_text()
        line = next(line for line in recipe.splitlines() if "ctl.py" in line)
        line = line.replace('"/srv/myapp/venv/bin/python"', "/usr/bin/python3")
        line = line.replace('"/srv/myapp/ops/ctl.py"', "ops/ctl.py")
        line = line.replace("runuser -u myapp", f"runuser -u {STRANGER}")
        result = subprocess.run(
            line, shell=True, cwd=shared.path, capture_output=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert server.wait(timeout=10) == -signal.SIGUSR1
        assert victim.poll() is None
    finally:
        server.kill()
        server.wait()


def test_a_pidfile_naming_another_users_process_is_never_acted_on(shared, stranger):
    sleeper = subprocess.Popen([*as_stranger(stranger), "sleep", "60"])
    try:
        shared.pidfile().parent.mkdir()
        shared.pidfile().write_text(f"{sleeper.pid}\n")
        for script in ("stop.sh", "status.sh", "start.sh", "stop.sh"):
            result = shared.run(script)
            assert result.returncode in (0, 3), result.stderr
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_root_refuses_a_file_of_another_user_deep_in_the_project(shared, stranger):
    module = shared.path / "app" / "health.py"
    os.chown(module, stranger.pw_uid, stranger.pw_gid)
    assert_refused(shared.run("start.sh"), module, "start.sh")
    assert shared.servers() == []


def test_root_sources_no_helper_another_user_could_have_written(shared, stranger):
    ops = shared.path / "ops"
    os.chown(ops, stranger.pw_uid, stranger.pw_gid)
    marker = shared.path.parent / "ran-as-root"
    with open(ops / "common.sh", "a") as helper:
        helper.write(f"touch '{marker}'\n")
    result = shared.run("status.sh")
    assert result.returncode == 4
    assert result.stderr == (
        f"error: {ops} is open to other users, and root acts only on what they "
        "cannot change\n"
    )
    assert not marker.exists(), "root ran the other user's helper"


def test_a_sticky_folder_in_the_project_is_no_excuse(shared):
    (shared.path / "ops").chmod(0o1777)  # anyone could add ops/datetime.py
    result = shared.run("status.sh")
    assert result.returncode == 4 and "ops is open to other users" in result.stderr


def test_root_ignores_a_runtime_directory_it_is_given(shared, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / f"app-{shared.port}.pid").write_text("1\n")
    result = shared.run("stop.sh", RUNTIME_DIRECTORY=str(elsewhere))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == [f"app-{shared.port}.pid"]


def test_root_accepts_uvs_lock_file_in_the_environment(shared):
    # uv sync leaves .venv/.lock writable by all, by design: nothing runs it.
    lock = Path(sys.prefix) / ".lock"
    made = not lock.exists()
    lock.touch()
    mode = lock.stat().st_mode
    lock.chmod(0o666)
    try:
        result = shared.run("status.sh")
    finally:
        lock.unlink() if made else lock.chmod(mode)
    assert result.returncode == 3, result.stderr
