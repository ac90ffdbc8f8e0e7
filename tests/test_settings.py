"""The server settings' one reader, read() in gunicorn.conf.py: each setting
from the environment, else .env, else its default; a bad value is reported in
one line and replaced by its default, for the caller to decide."""

import os
import runpy
import shutil
import sys
import types

import pytest

from tests.conftest import PROJECT, env_examples

DEFAULTS = {
    "HOST": "127.0.0.1",
    "PORT": 5000,
    "WEB_CONCURRENCY": 2,
    "LOG_LEVEL": "info",
    "LOG_FORMAT": "text",
    "ACCESS_LOG": "on",
    "HEALTH_ACCESS_LOG": "on",
    "GRACEFUL_TIMEOUT": 30,
    "START_TIMEOUT": 30,
    "DRAIN_SECONDS": 0,
    "STATSD_HOST": "",
    "STATSD_PORT": 8125,
}


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """A function that runs gunicorn.conf.py, copied alone into tmp_path (whose
    .env is the env_file fixture's), with the given environment; it returns
    what the file defines. What the file sets in this process is undone."""
    shutil.copy(PROJECT / "gunicorn.conf.py", tmp_path)
    monkeypatch.setitem(sys.modules, "server_settings", types.ModuleType("fresh"))
    monkeypatch.setenv("DRAIN_FILE", "")  # the file sets it
    umask = os.umask(0o022)  # the file sets it too
    os.umask(umask)

    def run(run_name="conf", **environ):
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(tmp_path / "gunicorn.conf.py"), run_name=run_name)

    yield run
    os.umask(umask)


@pytest.fixture
def read(conf):
    """read(environ) of a gunicorn.conf.py whose .env is the env_file fixture."""
    return conf()["read"]


def test_every_setting_has_a_default(read):
    values, sources, problems = read({})
    assert values == DEFAULTS
    assert set(sources.values()) == {"default"}
    assert problems == []


def test_the_environment_wins_over_env_file_which_wins_over_the_default(read, env_file):
    env_file.write_text('export PORT="5001"\nWEB_CONCURRENCY=3\nLOG_LEVEL=WARNING\n')
    values, sources, problems = read({"WEB_CONCURRENCY": "4"})
    assert (values["PORT"], sources["PORT"]) == (5001, str(env_file))
    assert (values["WEB_CONCURRENCY"], sources["WEB_CONCURRENCY"]) == (
        4,
        "the environment",
    )
    assert (values["LOG_LEVEL"], sources["LOG_LEVEL"]) == ("warning", str(env_file))
    assert (values["HOST"], sources["HOST"]) == ("127.0.0.1", "default")
    assert problems == []


NUMBERS = "use a whole number from "
LEVELS = "use one of debug, info, warning, error, critical"
ADDRESS = "use an address such as 127.0.0.1, or 0.0.0.0 for all"


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("PORT", "http", NUMBERS + "1 to 65535"),
        ("PORT", "70000", NUMBERS + "1 to 65535"),
        ("PORT", "٥٠٠١", NUMBERS + "1 to 65535"),  # digits, but not ASCII ones
        ("WEB_CONCURRENCY", "0", NUMBERS + "1 to 64"),
        ("GRACEFUL_TIMEOUT", "1.5", NUMBERS + "1 to 3600"),
        ("DRAIN_SECONDS", "-1", NUMBERS + "0 to 3600"),
        ("LOG_LEVEL", "loud", LEVELS),
        ("LOG_FORMAT", "xml", "use one of text, json"),
        ("HOST", "bad host;", ADDRESS),
        ("HOST", "[::1", ADDRESS),
    ],
)
def test_a_bad_value_is_one_line_naming_it_and_the_default_stands_in(
    read, name, value, rule
):
    values, sources, problems = read({name: value})
    assert problems == [f"{name}={value!r} in the environment: {rule}"]
    assert (values[name], sources[name]) == (DEFAULTS[name], "default")


@pytest.mark.parametrize(("text", "value"), [("off", "off"), ("ON", "on")])
def test_a_switch_is_on_or_off(read, text, value):
    values, _, problems = read({"ACCESS_LOG": text, "HEALTH_ACCESS_LOG": text})
    assert (values["ACCESS_LOG"], values["HEALTH_ACCESS_LOG"]) == (value, value)
    assert problems == []


@pytest.mark.parametrize("text", ["0", "false", "yes", "sometimes"])
def test_a_switch_takes_no_other_word(read, text):
    assert read({"ACCESS_LOG": text})[2] == [
        f"ACCESS_LOG={text!r} in the environment: use one of on, off"
    ]


def test_a_bad_value_in_env_file_names_the_file(read, env_file):
    env_file.write_text("GRACEFUL_TIMEOUT=soon\n")
    assert read({})[2] == [
        f"GRACEFUL_TIMEOUT='soon' in {env_file}: use a whole number from 1 to 3600"
    ]


def test_a_value_flask_copied_from_env_file_is_the_files(read, env_file):
    env_file.write_text("LOG_LEVEL=loud\n")
    problems = read({"LOG_LEVEL": "loud"})[2]  # as `flask` puts it there
    assert problems == [f"LOG_LEVEL='loud' in {env_file}: {LEVELS}"]
    values, sources, problems = read({"LOG_LEVEL": "warning"})
    assert (values["LOG_LEVEL"], sources["LOG_LEVEL"]) == ("warning", "the environment")
    assert problems == []


def test_an_empty_value_is_no_value(read, env_file):
    env_file.write_text("PORT=\nWEB_CONCURRENCY=3\n")
    values, sources, problems = read({"PORT": " ", "WEB_CONCURRENCY": ""})
    assert (values["PORT"], sources["PORT"]) == (5000, "default")
    assert (values["WEB_CONCURRENCY"], sources["WEB_CONCURRENCY"]) == (
        3,
        str(env_file),
    )
    assert problems == []


def test_an_unreadable_env_file_is_one_line_and_the_defaults_stand_in(read, env_file):
    env_file.write_bytes(b"PORT=5001\n\xff\xfe\n")
    values, _, problems = read({})
    assert values == DEFAULTS
    assert len(problems) == 1
    assert problems[0].startswith(f"{env_file} cannot be read: ")


def test_the_env_example_shows_every_default(read, env_file):
    examples = env_examples()
    env_file.write_text("\n".join(examples) + "\n")
    values, sources, problems = read({})
    assert problems == []
    assert values == DEFAULTS
    missing = [name for name, source in sources.items() if source != str(env_file)]
    assert missing == ["STATSD_HOST"], "a server setting is missing"  # empty: unset


@pytest.mark.parametrize(
    ("misspelt", "meant"),
    [("WEB_CONCURENCY", "WEB_CONCURRENCY"), ("PROT", "PORT"), ("HOTS", "HOST")],
)
def test_a_misspelt_setting_in_env_file_names_the_right_one(
    read, env_file, misspelt, meant
):
    env_file.write_text(f"{misspelt}=4\n")
    assert read({})[2] == [f"{misspelt} in {env_file} is not a setting: {meant}?"]


def test_the_apps_own_variables_in_env_file_are_no_misspelling(read, env_file):
    names = "DATABASE_URL HOSTNAME LOG_DIR APP_LOG_LEVEL SQL_LOG_LEVEL DB_PORT"
    names += " ACCESS_LOG_FILE CONCURRENCY POSTGRES_PORT APP_HOST REDIS_HOST"
    names += " FLASK_SECRET_KEY FLASK_APP_NAME"
    env_file.write_text("".join(f"{name}=1\n" for name in names.split()))
    assert read({})[2] == []


def test_the_file_reads_the_process_environment(conf):
    defined = conf(PORT="5002", WEB_CONCURRENCY="3", LOG_LEVEL="debug")
    assert defined["values"]["PORT"] == 5002
    assert defined["sources"]["WEB_CONCURRENCY"] == "the environment"
    assert (defined["workers"], defined["loglevel"]) == (3, "debug")
    assert defined["problems"] == []


@pytest.mark.parametrize(
    ("host", "bind"),
    [
        ("127.0.0.1", "127.0.0.1:5000"),
        ("0.0.0.0", "0.0.0.0:5000"),
        ("localhost", "localhost:5000"),
        ("::1", "[::1]:5000"),
        ("[::1]", "[::1]:5000"),
        ("::", "[::]:5000"),
    ],
)
def test_bind_is_host_and_port(conf, host, bind):
    assert conf(HOST=host)["bind"] == bind


def test_the_scripts_and_flask_get_the_problems_to_decide(conf):
    defined = conf(PORT="http")  # ops/ctl.py and `flask settings` run it so
    assert defined["problems"] == [
        "PORT='http' in the environment: use a whole number from 1 to 65535"
    ]
    assert defined["bind"] == "127.0.0.1:5000"


def test_under_gunicorn_a_problem_stops_the_first_load_in_one_line(conf):
    with pytest.raises(SystemExit) as stop:
        conf("__config__", PORT="http")
    assert stop.value.code == (
        "error: PORT='http' in the environment: use a whole number from 1 to 65535"
    )


def test_under_gunicorn_a_reload_with_a_problem_keeps_the_settings_in_force(
    conf, env_file, capsys
):
    assert conf("__config__", WEB_CONCURRENCY="3")["workers"] == 3
    env_file.write_text("LOG_LEVEL=loud\n")
    again = conf("__config__")  # a HUP: gunicorn runs the file again
    assert (again["workers"], again["loglevel"]) == (3, "info")
    assert capsys.readouterr().err == (
        f"warning: LOG_LEVEL='loud' in {env_file}: {LEVELS}; the settings in force "
        "stay\n"
    )
    env_file.write_text("LOG_LEVEL=warning\n")
    mended = conf("__config__", WEB_CONCURRENCY="5")
    assert (mended["workers"], mended["loglevel"]) == (5, "warning")
