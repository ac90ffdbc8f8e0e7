"""app/__init__.py and wsgi.py: the factory, and what gunicorn and flask load."""

import subprocess
import sys
import time
import urllib.request

import pytest
from flask import request


def test_test_config_reaches_the_app(make_app):
    assert make_app({"TESTING": True}).testing


def test_create_app_can_run_twice(make_app):
    first, second = make_app(), make_app()
    assert first is not second
    assert second.test_client().get("/health/ping").status_code == 200


@pytest.mark.parametrize(("proxies", "secure"), [(0, False), (1, True)])
def test_forwarded_headers_count_only_behind_trusted_proxies(make_app, proxies, secure):
    app = make_app({"TRUSTED_PROXIES": proxies})
    app.add_url_rule("/scheme", "scheme", lambda: {"secure": request.is_secure})
    response = app.test_client().get("/scheme", headers={"X-Forwarded-Proto": "https"})
    assert response.json == {"secure": secure}


def test_wsgi_imports_with_an_empty_instance_config(project, python_env):
    (project / "instance" / "config.py").write_text("")
    result = subprocess.run(
        [sys.executable, "-c", "from wsgi import app; print(app.config['APP_NAME'])"],
        cwd=project,
        env=python_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == project.name
    assert (project / "instance" / "secret_key").exists()


def test_flask_run_answers_ping(project, python_env, free_port):
    port = free_port()
    flask = [sys.executable, "-m", "flask", "run", "--port", str(port)]
    server = subprocess.Popen(
        flask,
        cwd=project,
        env=python_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = None
        deadline = time.monotonic() + 20
        while body is None and time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{port}/health/ping"
                body = urllib.request.urlopen(url, timeout=1).read()
            except OSError:
                time.sleep(0.1)
        assert body is not None, "flask run did not answer within 20 s"
        assert b'"status":"ok"' in body
    finally:
        server.terminate()
        server.wait(timeout=10)
