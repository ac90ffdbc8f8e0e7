"""Load settings in four layers, later wins, UPPERCASE names only in each:

1. config.py in the project folder: the defaults, which declare every setting;
2. instance/config.py, optional: local values and secrets, never committed;
3. FLASK_<NAME> variables from .env, then from the real environment (which wins);
4. test_config, for tests.

Layers 2-4 may set only settings declared in config.py or by Flask itself (a
typo is an error, not a silent no-op), and a value takes the type of its default.
Any problem raises ConfigError with a one-line message naming the key and source.
"""

import json
import os
import secrets
import traceback
from datetime import timedelta
from pathlib import Path

from dotenv import dotenv_values

# The flask command's own variables: they steer the command, never the config.
CLI_VARIABLES = {"APP", "DEBUG", "ENV", "ENV_FILE", "SKIP_DOTENV"}

# Made once per server by gunicorn.conf.py so that all workers sign alike.
SERVER_KEY_VARIABLE = "_APP_SERVER_SECRET_KEY"
# Set by gunicorn.conf.py in every worker but the first: warn once per server.
KEY_WARNED_VARIABLE = "_APP_SECRET_KEY_WARNED"

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """A setting that cannot be used; the message names the key and its source."""


def load_config(app, test_config=None, env_file=None):
    """Fill app.config from the four layers, checking names and types."""
    project = Path(app.root_path).parent
    env_file = Path(env_file) if env_file else project / ".env"
    instance_file = Path(app.instance_path) / "config.py"

    app.config.update(read_pyfile(project / "config.py"))
    defaults = dict(app.config)  # each value's type comes from here
    layers = [(str(instance_file), read_pyfile(instance_file))]
    layers += environment_layers(env_file)
    layers.append(("test_config", test_config or {}))

    for source, values in layers:
        for key, value in values.items():
            if key == "DEBUG":
                raise ConfigError(
                    f"{source}: DEBUG is not a setting here; "
                    "debug mode comes only from `flask run --debug`"
                )
            if key not in defaults:
                raise ConfigError(
                    f"{source}: {key} is not a setting; declare it in config.py"
                )
            app.config[key] = convert(key, value, defaults[key], source)


def read_pyfile(path):
    """Return the UPPERCASE names a Python settings file sets ({} if it is missing)."""
    try:
        code = compile(path.read_bytes(), str(path), "exec")
    except FileNotFoundError:
        return {}
    except SyntaxError as error:
        raise ConfigError(f"{path} line {error.lineno}: {error.msg}") from None
    namespace = {"__file__": str(path)}
    try:
        exec(code, namespace)
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        line = [frame.lineno for frame in frames if frame.filename == str(path)][-1]
        message = f"{type(error).__name__}: {error}"
        raise ConfigError(f"{path} line {line}: {message}") from None
    return {key: value for key, value in namespace.items() if key.isupper()}


def environment_layers(env_file):
    """Return a layer per FLASK_<NAME> variable: those of .env, then the real ones."""
    layers = []
    for where, variables in (
        (env_file, dotenv_values(env_file)),
        ("the environment", os.environ),
    ):
        for name, value in variables.items():
            key = name.removeprefix("FLASK_")
            if key == name or value is None or not key.isupper():
                continue
            if key in CLI_VARIABLES or key.startswith("RUN_"):
                continue
            layers.append((f"{name} in {where}", {key: value}))
    return layers


def convert(key, value, default, source):
    """Return value as the type of default; text is parsed, other types checked."""
    kind = type(default)
    if value is None or default is None or (kind is str and isinstance(value, str)):
        return value
    if isinstance(value, str):
        return parse(key, value, kind, source)
    if kind is float and type(value) is int:
        return float(value)
    if kind is timedelta and type(value) is int:
        return timedelta(seconds=value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"{source}: {key} must be {kind.__name__}, not {type(value).__name__} {value!r}"
    )


def parse(key, text, kind, source):
    """Read a text value (from the environment, say) as kind."""
    word = text.strip().lower()
    if kind is bool and word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is timedelta:
            return timedelta(seconds=int(text))
        if kind in (list, dict):
            value = json.loads(text)
            if isinstance(value, kind):
                return value
    except ValueError:
        pass
    expected = {
        bool: "true or false",
        timedelta: "a whole number of seconds",
        list: "a JSON list",
        dict: "a JSON object",
    }.get(kind, kind.__name__)
    raise ConfigError(f"{source}: {key} must be {expected}, not {text!r}")


def ensure_secret_key(app):
    """Use the server's random key when none is configured, and say so once."""
    if app.config["SECRET_KEY"]:
        return
    shared = os.environ.get(SERVER_KEY_VARIABLE)
    app.config["SECRET_KEY"] = shared or secrets.token_hex(32)
    if not os.environ.get(KEY_WARNED_VARIABLE):
        app.logger.warning(
            "no SECRET_KEY configured: using a random key that lasts until the "
            "server stops; set SECRET_KEY in instance/config.py or FLASK_SECRET_KEY"
        )
