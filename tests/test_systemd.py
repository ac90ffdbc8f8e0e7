"""deploy/myapp@.service and myapp@.socket under a real systemd: the project
installed in a Debian 12 container as deploy/README.md says, offline, from
the wheels of the README's `pip download` route, and driven with systemctl."""

import re
import shutil

import pytest

from tests import nspawn
from tests.conftest import PROJECT, copy_project

pytestmark = pytest.mark.lifecycle

UNIT = "myapp@5000"
URL = "http://127.0.0.1:5000"
# Requests wait while gunicorn restarts (the socket queues them): wait with them.
WRK = "wrk -t2 -c16 --timeout 10s"
# Routes for the tests, and an import that takes a while, as real apps' do.
TEST_CODE = """
import time

time.sleep(1.5)


@app.get("/slow")
def slow():
    time.sleep(2)
    return {"slow": True}
"""
INSTALL = f"""set -e
useradd --system --home-dir /srv/myapp --shell /usr/sbin/nologin myapp
cp -r /stage/project /srv/myapp && cd /srv/myapp
python3 -m venv venv
venv/bin/pip install -q --no-index -f /stage/wheels -r requirements.txt
chown myapp:myapp instance
cp deploy/myapp@.service deploy/myapp@.socket /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now {UNIT}.socket {UNIT}
"""


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    """A container with the project installed and myapp@5000 started."""
    if nspawn.missing():
        pytest.skip(nspawn.missing())
    stage = tmp_path_factory.mktemp("stage")
    copy_project(stage / "project")
    with open(stage / "project" / "wsgi.py", "a") as wsgi:
        wsgi.write(TEST_CODE)
    shutil.copytree(nspawn.wheelhouse(PROJECT / "requirements.txt"), stage / "wheels")
    box = nspawn.Machine(nspawn.debian_root(), stage, stage / "nspawn.log")
    try:
        box.check(INSTALL, timeout=300)
        yield box
    finally:
        box.stop()


def get(machine, path="/health/ping", headers=""):
    """GET path inside the container; return (status, body)."""
    out = machine.run(f"curl -s -m 20 {headers} -w '\\n%{{http_code}}' {URL}{path}")
    body, _, status = out.stdout.rpartition("\n")
    return int(status or 0), body


def main_pid(machine):
    return int(machine.check(f"systemctl show -P MainPID {UNIT}"))


def test_start_returns_once_the_app_answers(machine):
    machine.check(f"systemctl stop {UNIT}")
    # Straight after the start: the import takes 1.5 s, and the first request
    # must still get its answer.
    out = machine.check(
        f"systemctl start {UNIT} && curl -s -m 1 -o /dev/null -w '%{{http_code}}' "
        f"{URL}/health/ping"
    )
    assert out == "200"


def test_restart_under_load_fails_no_request(machine):
    out = machine.check(
        f"{WRK} -d5s {URL}/health/ping & sleep 1.5; systemctl restart {UNIT}; wait",
        timeout=60,
    )
    assert "requests in" in out, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out


def test_reload_brings_new_code_and_refuses_broken_code(machine):
    old = main_pid(machine)
    machine.check(
        'cd /srv/myapp && printf \'\\n@app.get("/new")\\ndef new():\\n'
        '    return {"new": True}\\n\' >> wsgi.py'
    )
    out = machine.check(
        f"{WRK} -d6s {URL}/health/ping & sleep 1; systemctl reload {UNIT}; wait",
        timeout=90,
    )
    assert "Socket errors" not in out and "Non-2xx" not in out, out
    new = main_pid(machine)
    assert new != old
    assert get(machine, "/new") == (200, '{"new":true}\n')
    assert machine.run(f"systemctl is-active {UNIT}").stdout.strip() == "active"

    machine.check(
        "cd /srv/myapp && echo 'raise RuntimeError(\"half-deployed\")' >> wsgi.py"
    )
    result = machine.run(f"systemctl reload {UNIT}", timeout=90)
    assert result.returncode != 0
    assert main_pid(machine) == new
    assert "half-deployed" in machine.check(f"journalctl -u {UNIT} -n 100 --no-pager")
    # A worker that dies later is replaced from the loaded app, not the disk.
    machine.check(f"pkill -KILL -P {new} -f gunicorn")
    assert machine.wait_for(lambda: get(machine)[0] == 200, 20, "the app to answer")
    assert get(machine, "/new")[0] == 200
    machine.check("cd /srv/myapp && sed -i '/half-deployed/d' wsgi.py")
    machine.check(f"systemctl reload {UNIT}", timeout=90)
    assert main_pid(machine) != new


def test_a_killed_main_process_is_started_again(machine):
    old = main_pid(machine)
    machine.check(f"kill -9 {old}")
    machine.wait_for(
        lambda: main_pid(machine) not in (0, old) and get(machine)[0] == 200,
        30,
        "systemd to start it again",
    )


def test_stop_lets_requests_in_flight_finish(machine):
    out = machine.check(
        f"curl -s -m 20 -w ' %{{http_code}}' {URL}/slow & sleep 0.5; "
        f"systemctl stop {UNIT}; wait",
        timeout=60,
    )
    assert out.split() == ['{"slow":true}', "200"]
    machine.check(f"systemctl start {UNIT}")


def test_stop_drains_first_when_drain_seconds_is_set(machine):
    machine.check("echo DRAIN_SECONDS=3 > /srv/myapp/.env")
    try:
        # is-active exits 3 while the unit is deactivating: run, not check.
        out = machine.run(
            f"systemctl stop --no-block {UNIT}; sleep 1; "
            f"curl -s -o /dev/null -w '%{{http_code}} ' {URL}/health/ready; "
            f"curl -s -o /dev/null -w '%{{http_code}} ' {URL}/health/ping; "
            f"systemctl is-active {UNIT}"
        ).stdout
        assert out.split() == ["503", "200", "deactivating"]
        machine.wait_for(
            lambda: (
                machine.run(f"systemctl is-active {UNIT}").stdout.strip() == "inactive"
            ),
            20,
            "the drained server to stop",
        )
    finally:
        machine.check("rm -f /srv/myapp/.env")
        machine.check(f"systemctl start {UNIT}")
    assert get(machine, "/health/ready")[0] == 200


def test_the_scripts_refuse_root_and_leave_the_instance_to_systemctl(machine):
    pid = main_pid(machine)
    as_root = machine.run("cd /srv/myapp && sh stop.sh")
    # instance/ is the app user's: root would run and signal on its say.
    assert as_root.returncode == 1, as_root.stdout
    assert "/srv/myapp/instance is open to myapp" in as_root.stderr
    assert "runuser -u myapp -- sh stop.sh, or chown root" in as_root.stderr
    hint = " is in use"
    scripts = {}
    for script in ("stop", "status", "start"):
        scripts[script] = machine.run(
            f"cd /srv/myapp && runuser -u myapp -- sh {script}.sh"
        )
    assert scripts["stop"].returncode == 0 and hint in scripts["stop"].stdout
    assert scripts["status"].returncode == 3 and hint in scripts["status"].stdout
    assert scripts["start"].returncode == 1 and hint in scripts["start"].stderr
    assert main_pid(machine) == pid
    assert get(machine)[0] == 200


def test_the_journal_holds_the_request_ids(machine):
    assert get(machine, headers="-H 'X-Request-ID: journal-check-42'")[0] == 200
    journal = machine.check(f"journalctl -u {UNIT} -n 50 --no-pager")
    assert "journal-check-42" in journal


def test_the_unit_is_sandboxed(machine):
    out = machine.check(f"systemd-analyze security {UNIT} --no-pager")
    level = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out)[1])
    assert level <= 1.5, out
    assert get(machine)[0] == 200
