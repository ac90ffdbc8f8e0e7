"""ops/settings.py: server settings from the environment, then .env, then defaults."""

import pytest

from ops import settings
from tests.conftest import env_examples


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    """Point the settings at a .env of the test's own."""
    monkeypatch.setattr(settings, "PROJECT", tmp_path)
    return tmp_path / ".env"


def test_defaults(env_file):
    values = settings.read()
    assert values == {
        "HOST": "127.0.0.1",
        "PORT": 5000,
        "WEB_CONCURRENCY": 2,
        "LOG_LEVEL": "info",
        "GRACEFUL_TIMEOUT": 30,
        "START_TIMEOUT": 30,
        "ACCESS_LOG": True,
        "HEALTH_ACCESS_LOG": True,
        "DRAIN_SECONDS": 0,
        "LOG_FORMAT": "text",
    }


def test_env_file_then_environment(env_file, monkeypatch):
    env_file.write_text('export PORT="5001"\nWEB_CONCURRENCY=3\nLOG_LEVEL=WARNING\n')
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    values = settings.read()
    assert (values["PORT"], values["WEB_CONCURRENCY"]) == (5001, 4)
    assert values["LOG_LEVEL"] == "warning"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "http", "PORT='http' in the environment: use a whole number"),
        ("PORT", "70000", "from 1 to 65535"),
        ("WEB_CONCURRENCY", "abc", "WEB_CONCURRENCY='abc'"),
        ("WEB_CONCURRENCY", "0", "from 1 to 64"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud' in the environment: use one of"),
        ("HOST", "bad host;", "HOST='bad host;'"),
        (
            "ACCESS_LOG",
            "sometimes",
            "ACCESS_LOG='sometimes' in the environment: use on",
        ),
    ],
)
def test_bad_values_name_the_variable(env_file, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingError, match=message):
        settings.read()


@pytest.mark.parametrize(
    ("text", "value"), [("off", False), ("ON", True), ("0", False)]
)
def test_access_log_switch(env_file, monkeypatch, text, value):
    monkeypatch.setenv("ACCESS_LOG", text)
    assert settings.read()["ACCESS_LOG"] is value


def test_bad_value_in_env_file_names_the_file(env_file):
    env_file.write_text("GRACEFUL_TIMEOUT=soon\n")
    with pytest.raises(settings.SettingError, match=f"in {env_file}"):
        settings.read()


@pytest.mark.parametrize(
    ("host", "bind", "url"),
    [
        ("127.0.0.1", "127.0.0.1:5000", "http://127.0.0.1:5000/health/ping"),
        ("0.0.0.0", "0.0.0.0:5000", "http://127.0.0.1:5000/health/ping"),
        ("::1", "[::1]:5000", "http://[::1]:5000/health/ping"),
        ("::", "[::]:5000", "http://[::1]:5000/health/ping"),
    ],
)
def test_bind_address_and_local_url(host, bind, url):
    values = {"HOST": host, "PORT": 5000}
    assert settings.bind_address(values) == bind
    assert settings.local_url(values) == url


def test_the_env_example_loads_cleanly_with_every_line_uncommented(env_file):
    examples = env_examples()
    names = {line.split("=")[0] for line in examples}
    assert set(settings.SETTINGS) <= names, "a server setting is missing"
    env_file.write_text("\n".join(examples) + "\n")
    settings.read()


@pytest.mark.parametrize(
    ("misspelt", "meant"),
    [("WEB_CONCURENCY", "WEB_CONCURRENCY"), ("PROT", "PORT"), ("HOTS", "HOST")],
)
def test_a_misspelt_server_setting_in_the_env_file_names_the_right_one(
    env_file, misspelt, meant
):
    env_file.write_text(f"{misspelt}=4\n")
    with pytest.raises(settings.SettingError, match=f"did you mean {meant}\\?"):
        settings.read()


def test_the_apps_own_variables_in_the_env_file_are_no_misspelling(env_file):
    names = "DATABASE_URL HOSTNAME LOG_DIR APP_LOG_LEVEL SQL_LOG_LEVEL DB_PORT"
    names += " ACCESS_LOG_FILE CONCURRENCY POSTGRES_PORT APP_HOST REDIS_HOST"
    env_file.write_text("".join(f"{name}=1\n" for name in names.split()))
    settings.read()


def test_read_one_names_the_env_file_for_a_value_flask_copied_from_it(
    env_file, monkeypatch
):
    env_file.write_text("LOG_LEVEL=loud\n")
    monkeypatch.setenv("LOG_LEVEL", "loud")  # as `flask` does with .env
    with pytest.raises(settings.SettingError, match=f"'loud' in {env_file}: use"):
        settings.read_one("LOG_LEVEL")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert settings.read_one("LOG_LEVEL") == "warning"
