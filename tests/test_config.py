"""app/config.py: four layers, later wins, UPPERCASE only, typed, checked."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from app.config import ConfigError
from tests.conftest import PROJECT, env_examples


def test_defaults_come_from_config_py(make_app):
    app = make_app()
    assert app.config["APP_NAME"] == PROJECT.name
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["TRUSTED_PROXIES"] == 0


def test_instance_config_overrides_defaults(make_app, instance):
    (instance / "config.py").write_text('APP_NAME = "shop"\nlower_name = "temp"\n')
    app = make_app()
    assert app.config["APP_NAME"] == "shop"
    assert "lower_name" not in app.config


def test_missing_instance_config_is_fine(make_app):
    assert make_app().config["APP_NAME"] == PROJECT.name


def test_env_file_overrides_instance_config(make_app, instance, env_file):
    (instance / "config.py").write_text('APP_NAME = "from instance"\n')
    env_file.write_text('FLASK_APP_NAME="from .env"\n')
    assert make_app().config["APP_NAME"] == "from .env"


def test_real_environment_overrides_env_file(make_app, env_file, monkeypatch):
    env_file.write_text("FLASK_APP_NAME=from-dotenv\n")
    monkeypatch.setenv("FLASK_APP_NAME", "from-environment")
    assert make_app().config["APP_NAME"] == "from-environment"


def test_env_file_is_not_written_into_the_environment(make_app, env_file):
    env_file.write_text("FLASK_APP_NAME=from-dotenv\n")
    make_app()
    assert "FLASK_APP_NAME" not in os.environ


def test_edited_env_file_is_read_again_by_the_next_app(make_app, env_file):
    env_file.write_text("FLASK_APP_NAME=first\n")
    assert make_app().config["APP_NAME"] == "first"
    env_file.write_text("FLASK_APP_NAME=second\n")
    assert make_app().config["APP_NAME"] == "second"


def test_test_config_overrides_everything(make_app, env_file, monkeypatch):
    env_file.write_text("FLASK_APP_NAME=dotenv\n")
    monkeypatch.setenv("FLASK_APP_NAME", "environment")
    assert make_app({"APP_NAME": "test"}).config["APP_NAME"] == "test"


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_lowercase_variables_are_ignored(make_app, env_file, monkeypatch, where):
    if where == "environment":
        monkeypatch.setenv("FLASK_app_name", "lower")
    else:
        env_file.write_text("FLASK_app_name=lower\n")
    app = make_app()
    assert app.config["APP_NAME"] == PROJECT.name
    assert "app_name" not in app.config


@pytest.mark.parametrize(
    "name",
    ["FLASK_APP", "FLASK_ENV", "FLASK_RUN_PORT", "FLASK_ENV_FILE", "FLASK_SKIP_DOTENV"],
)
def test_flask_command_variables_stay_out_of_config(make_app, monkeypatch, name):
    monkeypatch.setenv(name, "1")
    assert name.removeprefix("FLASK_") not in make_app().config


def test_unknown_variable_is_an_error_naming_it(make_app, monkeypatch):
    monkeypatch.setenv("FLASK_MAX_CONTENT_LENGHT", "10")
    with pytest.raises(
        ConfigError, match="FLASK_MAX_CONTENT_LENGHT in the environment"
    ):
        make_app()


def test_unknown_instance_setting_is_an_error(make_app, instance):
    (instance / "config.py").write_text("DATABSE_URL = 'x'\n")
    with pytest.raises(ConfigError, match="DATABSE_URL is not a setting; declare it"):
        make_app()


def test_debug_in_instance_config_is_refused(make_app, instance):
    (instance / "config.py").write_text("DEBUG = True\n")
    with pytest.raises(ConfigError, match="flask run --debug"):
        make_app()


def test_debug_in_test_config_is_refused(make_app):
    with pytest.raises(ConfigError, match="DEBUG is not a setting here"):
        make_app({"DEBUG": True})


@pytest.mark.parametrize(
    ("variable", "text", "key", "value"),
    [
        ("FLASK_MAX_CONTENT_LENGTH", "1024", "MAX_CONTENT_LENGTH", 1024),
        ("FLASK_SESSION_COOKIE_SECURE", "true", "SESSION_COOKIE_SECURE", True),
        ("FLASK_SESSION_COOKIE_SECURE", "off", "SESSION_COOKIE_SECURE", False),
        ("FLASK_SECRET_KEY", "12345", "SECRET_KEY", "12345"),
        ("FLASK_SECRET_KEY_FALLBACKS", '["old"]', "SECRET_KEY_FALLBACKS", ["old"]),
        ("FLASK_TRUSTED_PROXIES", "1", "TRUSTED_PROXIES", 1),
        (
            "FLASK_PERMANENT_SESSION_LIFETIME",
            "3600",
            "PERMANENT_SESSION_LIFETIME",
            timedelta(hours=1),
        ),
    ],
)
def test_values_take_the_type_of_their_default(
    make_app, monkeypatch, variable, text, key, value
):
    monkeypatch.setenv(variable, text)
    assert make_app().config[key] == value
    assert type(make_app().config[key]) is type(value)


def test_type_comes_from_the_default_not_an_earlier_layer(
    make_app, instance, monkeypatch
):
    (instance / "config.py").write_text("MAX_CONTENT_LENGTH = None\n")
    monkeypatch.setenv("FLASK_MAX_CONTENT_LENGTH", "1024")
    assert make_app().config["MAX_CONTENT_LENGTH"] == 1024


def test_bad_value_in_environment_names_key_and_source(make_app, monkeypatch):
    monkeypatch.setenv("FLASK_MAX_CONTENT_LENGTH", "big")
    message = (
        "FLASK_MAX_CONTENT_LENGTH in the environment: MAX_CONTENT_LENGTH must be int"
    )
    with pytest.raises(ConfigError, match=message):
        make_app()


def test_bad_value_in_env_file_names_the_file(make_app, env_file):
    env_file.write_text("FLASK_SESSION_COOKIE_SECURE=maybe\n")
    with pytest.raises(
        ConfigError, match=f"in {env_file}: SESSION_COOKIE_SECURE must be"
    ):
        make_app()


def test_bad_value_in_instance_config_names_the_file(make_app, instance):
    (instance / "config.py").write_text('MAX_CONTENT_LENGTH = "big"\n')
    with pytest.raises(ConfigError, match=r"instance/config.py: MAX_CONTENT_LENGTH"):
        make_app()


def test_bad_list_is_refused(make_app, monkeypatch):
    monkeypatch.setenv("FLASK_SECRET_KEY_FALLBACKS", '{"not": "a list"}')
    with pytest.raises(ConfigError, match="must be a JSON list"):
        make_app()


def test_instance_config_with_syntax_error_names_file_and_line(make_app, instance):
    (instance / "config.py").write_text('APP_NAME = "ok"\nSECRET_KEY = (\n')
    with pytest.raises(ConfigError, match=r"instance/config.py line 2: '\(' was never"):
        make_app()


def test_instance_config_that_raises_names_file_and_line(make_app, instance):
    (instance / "config.py").write_text("import os\nSECRET_KEY = os.environ['NONE']\n")
    with pytest.raises(ConfigError, match=r"instance/config.py line 2: KeyError"):
        make_app()


def test_configured_secret_key_is_used(make_app, instance):
    app = make_app({"SECRET_KEY": "configured"})
    assert app.secret_key == "configured"
    assert not (instance / "secret_key").exists()


def test_missing_secret_key_is_made_once_into_the_instance_folder(make_app, instance):
    first, second = make_app(), make_app()
    key = instance / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(first.secret_key) == 64
    assert first.secret_key == second.secret_key == key.read_text().strip()
    assert [p.name for p in instance.iterdir()] == ["secret_key"], "no draft left"


def test_instance_secret_key_beats_the_key_file(make_app, instance):
    (instance / "secret_key").write_text("made before\n")
    (instance / "config.py").write_text('SECRET_KEY = "from instance"\n')
    assert make_app().secret_key == "from instance"


def test_processes_racing_to_make_the_key_agree(project, python_env):
    read_key = [sys.executable, "-c", "from wsgi import app; print(app.secret_key)"]
    racers = [
        subprocess.Popen(
            read_key, cwd=project, env=python_env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    keys = {racer.communicate(timeout=60)[0].strip() for racer in racers}
    assert keys == {(project / "instance" / "secret_key").read_text().strip()}


@pytest.mark.parametrize("key", ["", "   "])
@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_an_empty_or_blank_secret_key_is_refused_naming_the_variable(
    make_app, instance, env_file, monkeypatch, key, where
):
    if where == "environment":
        monkeypatch.setenv("FLASK_SECRET_KEY", key)
        source = "FLASK_SECRET_KEY in the environment"
    else:
        env_file.write_text(f'FLASK_SECRET_KEY="{key}"\n')
        source = f"FLASK_SECRET_KEY in {env_file}"
    with pytest.raises(ConfigError) as error:
        make_app()
    assert str(error.value) == (
        f"{source}: SECRET_KEY is empty: give FLASK_SECRET_KEY a key, or remove "
        "it (one is then made in instance/secret_key)"
    )
    assert not (instance / "secret_key").exists()


def test_an_empty_secret_key_in_instance_config_is_refused(make_app, instance):
    (instance / "config.py").write_text('SECRET_KEY = b""\n')
    with pytest.raises(ConfigError, match="config.py: SECRET_KEY is empty: give "):
        make_app()


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_an_empty_secret_key_is_one_line_under_flask(project, python_env, where):
    if where == "dotenv":
        (project / ".env").write_text("FLASK_SECRET_KEY=\n")
        source, env = f"FLASK_SECRET_KEY in {project / '.env'}", python_env
    else:
        source = "FLASK_SECRET_KEY in the environment"
        env = dict(python_env, FLASK_SECRET_KEY=" ")
    result = subprocess.run(
        [sys.executable, "-m", "flask", "routes"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"ConfigError: {source}: SECRET_KEY is empty: give FLASK_SECRET_KEY a "
        "key, or remove it (one is then made in instance/secret_key)\n"
    )


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_an_empty_secret_key_fails_the_start_leaving_nothing(site, where):
    env = {"FLASK_SECRET_KEY": "  "} if where == "environment" else {}
    if where == "dotenv":
        (site.path / ".env").write_text('FLASK_SECRET_KEY=""\n')
    result = site.run("start.sh", **env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: start failed: gunicorn exited (1): ")
    assert "ConfigError: FLASK_SECRET_KEY in " in result.stderr
    assert ": SECRET_KEY is empty: give FLASK_SECRET_KEY a key" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert site.servers() == []
    assert not site.pidfile().exists()
    assert not (site.path / "instance" / "secret_key").exists()


def test_the_instance_folder_is_closed_to_others(make_app, instance):
    instance.chmod(0o755)
    make_app({"SECRET_KEY": "configured"})
    assert instance.stat().st_mode & 0o777 == 0o700


def test_an_empty_key_file_is_an_error(make_app, instance):
    (instance / "secret_key").write_text("")
    with pytest.raises(ConfigError, match="secret_key is empty: delete it"):
        make_app()


@pytest.mark.parametrize(
    ("text", "value"),
    [('["localhost", "127.0.0.1"]', ["localhost", "127.0.0.1"]), ("null", None)],
)
def test_a_list_setting_whose_default_is_none_reads_json(
    make_app, monkeypatch, text, value
):
    monkeypatch.setenv("FLASK_TRUSTED_HOSTS", text)
    assert make_app().config["TRUSTED_HOSTS"] == value


@pytest.mark.parametrize("text", ["localhost", '["localhost", 1]', '"localhost"'])
def test_a_list_setting_refuses_what_is_not_a_list_of_text(make_app, monkeypatch, text):
    monkeypatch.setenv("FLASK_TRUSTED_HOSTS", text)
    message = (
        "FLASK_TRUSTED_HOSTS in the environment: TRUSTED_HOSTS must be "
        "a JSON list of str or None, not "
    )
    with pytest.raises(ConfigError, match=message):
        make_app()


def test_an_annotation_in_config_py_gives_the_type(make_app, instance):
    (instance / "config.py").write_text('SECRET_KEY_FALLBACKS = "old"\n')
    with pytest.raises(ConfigError, match="SECRET_KEY_FALLBACKS must be a JSON list"):
        make_app()


def test_a_flask_setting_keeps_its_none(make_app, instance):
    (instance / "config.py").write_text("SESSION_COOKIE_SAMESITE = None\n")
    assert make_app().config["SESSION_COOKIE_SAMESITE"] is None


def test_a_misspelt_setting_names_the_nearest(make_app, monkeypatch):
    monkeypatch.setenv("FLASK_SECRT_KEY", "x")
    message = "SECRT_KEY is not a setting; did you mean SECRET_KEY\\? Or declare it"
    with pytest.raises(ConfigError, match=message):
        make_app()


def test_flask_settings_lists_values_and_layers_with_secrets_masked(
    project, python_env
):
    (project / ".env").write_text('PORT=5005\nFLASK_TRUSTED_HOSTS=["a.example"]\n')
    (project / "instance" / "config.py").write_text("SECRET_KEY = 'hush'\n")
    # The server settings come from their one reader, gunicorn.conf.py.
    conf = project / "gunicorn.conf.py"
    text = conf.read_text()
    assert '"START_TIMEOUT": ("30", ' in text
    conf.write_text(
        text.replace('"START_TIMEOUT": ("30", ', '"START_TIMEOUT": ("45", ')
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "settings"],
        cwd=project,
        env=dict(python_env, WEB_CONCURRENCY="3", LOG_LEVEL="loud"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in [
        "Server settings (start.sh, gunicorn.conf.py; no prefix):",
        f"  PORT = 5005  [{project / '.env'}]",
        "  WEB_CONCURRENCY = 3  [the environment]",
        "  HOST = 127.0.0.1  [default]",
        "  ACCESS_LOG = on  [default]",
        "  START_TIMEOUT = 45  [default]",
        "  LOG_LEVEL = info  [default]",
        f"  TRUSTED_HOSTS = ['a.example']  [FLASK_TRUSTED_HOSTS in {project / '.env'}]",
        f"  SECRET_KEY = ********  [{project / 'instance' / 'config.py'}]",
        "  TRUSTED_PROXIES = 0  [config.py]",
        "  SESSION_COOKIE_SECURE = False  [Flask's default]",
    ]:
        assert expected in lines, result.stdout
    assert "hush" not in result.stdout
    assert result.stderr == (
        "warning: LOG_LEVEL='loud' in the environment: use one of debug, info, "
        "warning, error, critical; using the default meanwhile\n"
    )


def test_the_env_example_app_settings_load(make_app, env_file):
    env_file.write_text("\n".join(env_examples()) + "\n")
    config = make_app().config
    assert config["TRUSTED_HOSTS"] == ["example.com", "www.example.com"]
    assert config["SESSION_COOKIE_SECURE"] is True


def test_a_server_setting_with_the_flask_prefix_says_so(make_app, monkeypatch):
    monkeypatch.setenv("FLASK_WEB_CONCURRENCY", "4")
    with pytest.raises(ConfigError) as error:
        make_app()
    assert str(error.value) == (
        "FLASK_WEB_CONCURRENCY in the environment: WEB_CONCURRENCY is not a "
        "setting; declare it in config.py (server settings, such as PORT, take "
        "no FLASK_)"
    )


def test_a_bytes_secret_key_is_taken_and_never_shown(make_app, instance):
    (instance / "config.py").write_text("SECRET_KEY = b'bytes-key'\n")
    assert make_app().config["SECRET_KEY"] == b"bytes-key"
    (instance / "config.py").write_text("SECRET_KEY = 12345\n")
    with pytest.raises(ConfigError, match="not a value that is not shown") as error:
        make_app()
    assert "12345" not in str(error.value)


@pytest.mark.parametrize("text", ["99999999999999999999", "[" * 5000])
def test_text_that_cannot_be_read_is_one_error(make_app, monkeypatch, text):
    monkeypatch.setenv("FLASK_PERMANENT_SESSION_LIFETIME", text)
    with pytest.raises(ConfigError, match="must be a whole number of seconds"):
        make_app()


def test_an_empty_fallback_key_is_refused(make_app, monkeypatch):
    monkeypatch.setenv("FLASK_SECRET_KEY_FALLBACKS", '["old key", " "]')
    with pytest.raises(ConfigError, match="SECRET_KEY_FALLBACKS holds an empty key"):
        make_app({"SECRET_KEY": "a key"})
