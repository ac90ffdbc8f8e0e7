"""app/__init__.py and wsgi.py: the factory, and what gunicorn and flask load."""

import re
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


def test_a_bad_server_setting_is_no_concern_of_flask(project, python_env):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "routes"],
        cwd=project,
        env=dict(python_env, LOG_LEVEL="loud", PORT="http"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "health.ping" in result.stdout


@pytest.mark.parametrize(
    ("command", "variable", "value", "line"),
    [
        (
            ["-m", "flask", "routes"],
            "FLASK_TRUSTED_HOSTS",
            "localhost",
            "ConfigError: FLASK_TRUSTED_HOSTS in the environment: TRUSTED_HOSTS "
            "must be a JSON list of str or None, not 'localhost'",
        ),
        (
            ["-m", "gunicorn"],
            "GRACEFUL_TIMEOUT",
            "soon",
            "error: GRACEFUL_TIMEOUT='soon' in the environment: use a whole number "
            "from 1 to 3600",
        ),
        (
            ["-m", "gunicorn", "--bind", "127.0.0.1:0"],
            "FLASK_MAX_CONTENT_LENGHT",
            "1",
            "ConfigError: FLASK_MAX_CONTENT_LENGHT in the environment: "
            "MAX_CONTENT_LENGHT is not a setting; did you mean MAX_CONTENT_LENGTH?",
        ),
    ],
)
def test_a_bad_setting_is_one_line_under_flask_and_gunicorn(
    project, python_env, command, variable, value, line
):
    result = subprocess.run(
        [sys.executable, *command],
        cwd=project,
        env=dict(python_env, **{variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = [
        text
        for text in result.stderr.splitlines()
        if re.match(r"error: |\w+Error: ", text)
    ]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(line)
    assert "Traceback" not in result.stderr
