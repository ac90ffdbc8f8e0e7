"""app/health.py: ping and readiness checks."""

import sys
import threading
import time

import pytest
from flask import current_app

from app import health
from app.config import ConfigError


def test_ping_answers_ok_with_the_app_name(client):
    response = client.get("/health/ping")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "app": client.application.config["APP_NAME"],
    }


def test_ping_answers_head(client):
    response = client.head("/health/ping")
    assert response.status_code == 200
    assert response.data == b""


def test_ready_with_no_checks_is_ok(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_runs_the_registered_checks(app):
    calls = []
    health.add_check(app, "cache", lambda: calls.append("cache"))
    assert app.test_client().get("/health/ready").status_code == 200
    assert calls == ["cache"]


def test_ready_names_the_failing_checks(app):
    health.add_check(app, "cache", lambda: True)
    health.add_check(app, "queue", lambda: False)
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "failing": ["queue"]}


def test_ready_counts_a_check_that_raises_as_failing(app, caplog):
    def database():
        raise ConnectionError("database is down")

    health.add_check(app, "database", database)
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.json["failing"] == ["database"]
    assert "readiness check database failed" in caplog.text


def test_checks_belong_to_their_app(make_app):
    first, second = make_app(), make_app()
    health.add_check(first, "queue", lambda: False)
    assert second.test_client().get("/health/ready").status_code == 200


def test_host_checking_spares_the_health_probes(make_app):
    client = make_app({"TRUSTED_HOSTS": ["example.com"]}).test_client()
    assert (
        client.get("/health/ping", base_url="http://10.1.2.3:5000").status_code == 200
    )
    assert client.get("/health/ready", base_url="http://127.0.0.1").status_code == 200
    refused = client.get("/nowhere", base_url="http://10.1.2.3:5000")
    assert refused.status_code == 400
    assert refused.json["status"] == 400
    assert client.get("/nowhere", base_url="http://example.com").status_code == 404


def test_only_the_probes_themselves_are_spared_host_checking(make_app):
    client = make_app({"TRUSTED_HOSTS": ["example.com"]}).test_client()
    for path in ("/health//ping", "/health/ping/", "/health/"):
        answer = client.get(path, base_url="http://evil.example")
        assert answer.status_code == 400, path


def test_ready_answers_503_while_the_server_drains(client, tmp_path, monkeypatch):
    drain = tmp_path / "app-5000.drain"  # gunicorn.conf.py names it, stop.sh makes it
    monkeypatch.setenv("DRAIN_FILE", str(drain))
    assert client.get("/health/ready").status_code == 200
    drain.touch()
    response = client.get("/health/ready")
    assert (response.status_code, response.json) == (503, {"status": "draining"})
    assert client.get("/health/ping").status_code == 200, "all else is served"


def test_a_check_that_hangs_fails_by_its_deadline_and_runs_once(make_app):
    app = make_app({"SECRET_KEY": "k", "HEALTH_CHECK_TIMEOUT": 0.3})
    release, calls = threading.Event(), []

    def hangs():
        calls.append(threading.current_thread())
        release.wait(30)

    health.add_check(app, "upstream", hangs)
    health.add_check(app, "cache", lambda: True)
    try:
        for _ in range(3):
            began = time.monotonic()
            response = app.test_client().get("/health/ready")
            assert time.monotonic() - began < 1
            assert response.status_code == 503
            assert response.json == {"status": "unavailable", "failing": ["upstream"]}
        # One run in flight, however many probes: threads do not pile up, and
        # none keeps a worker from exiting.
        assert len(calls) == 1 and calls[0].daemon
    finally:
        release.set()
    calls[0].join(5)
    assert app.test_client().get("/health/ready").status_code == 200
    assert len(calls) == 2


def test_each_check_may_have_its_own_deadline(make_app):
    app = make_app({"SECRET_KEY": "k", "HEALTH_CHECK_TIMEOUT": 0.1})
    health.add_check(app, "slow but allowed", lambda: time.sleep(0.4), timeout=2)
    health.add_check(app, "slow", lambda: time.sleep(0.4))
    response = app.test_client().get("/health/ready")
    assert response.json == {"status": "unavailable", "failing": ["slow"]}


def test_checks_run_at_once_so_deadlines_do_not_add_up(make_app):
    app = make_app({"SECRET_KEY": "k", "HEALTH_CHECK_TIMEOUT": 1})
    for name in ("a", "b", "c", "d"):
        health.add_check(app, name, lambda: time.sleep(0.5))
    began = time.monotonic()
    assert app.test_client().get("/health/ready").status_code == 200
    assert time.monotonic() - began < 1.5


def test_a_check_runs_in_an_app_context(app):
    health.add_check(
        app, "config", lambda: current_app.config["SECRET_KEY"] == "test key"
    )
    assert app.test_client().get("/health/ready").status_code == 200


def test_a_probe_waits_no_longer_than_the_run_in_flight_has_left(make_app):
    app = make_app({"SECRET_KEY": "k", "HEALTH_CHECK_TIMEOUT": 0.5})
    release = threading.Event()
    health.add_check(app, "upstream", lambda: release.wait(30))
    try:
        assert app.test_client().get("/health/ready").status_code == 503
        # The run is past its deadline: later probes do not wait for it again.
        began = time.monotonic()
        assert app.test_client().get("/health/ready").status_code == 503
        assert time.monotonic() - began < 0.1
    finally:
        release.set()


def test_a_check_that_ends_with_system_exit_is_logged(app, caplog):
    health.add_check(app, "exits", lambda: sys.exit(3))
    assert app.test_client().get("/health/ready").json["failing"] == ["exits"]
    assert "readiness check exits failed" in caplog.text


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "61"])
def test_a_deadline_no_probe_can_wait_for_is_refused(make_app, monkeypatch, seconds):
    monkeypatch.setenv("FLASK_HEALTH_CHECK_TIMEOUT", seconds)
    with pytest.raises(ConfigError) as refused:
        make_app({"SECRET_KEY": "k"})
    assert str(refused.value) == (
        "FLASK_HEALTH_CHECK_TIMEOUT in the environment: HEALTH_CHECK_TIMEOUT must "
        f"be more than 0 and at most 60 seconds, not {float(seconds)!r}"
    )


def test_mistakes_in_add_check_are_refused(app):
    health.add_check(app, "db", lambda: True)
    with pytest.raises(ValueError, match="'db' is already registered"):
        health.add_check(app, "db", lambda: False)

    async def coroutine():
        return False

    with pytest.raises(ValueError, match="must be a plain function"):
        health.add_check(app, "async", coroutine)
    with pytest.raises(ValueError, match="timeout must be 0 to 60 s"):
        health.add_check(app, "never", lambda: True, timeout=0)
