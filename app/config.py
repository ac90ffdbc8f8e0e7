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
import tempfile
import traceback
from datetime import timedelta
from pathlib import Path

from dotenv import dotenv_values

# The flask command's own variables: they steer the command, never the config.
CLI_VARIABLES = {"APP", "DEBUG", "ENV", "ENV_FILE", "SKIP_DOTENV"}

# The key made when none is configured, in the instance folder (git-ignored).
KEY_FILE = "secret_key"

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
    """Use the configured SECRET_KEY, else the one in instance/secret_key, which
    the first start (by any entry point) makes: every later start, reload and
    server of this folder then signs alike, and sessions survive restarts."""
    if app.config["SECRET_KEY"]:
        return
    path = Path(app.instance_path) / KEY_FILE
    if not path.exists():
        make_key_file(path)
        app.logger.info("no SECRET_KEY configured: made one in %s", path)
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"{path} is empty: delete it (a new key is made) or set one")
    app.config["SECRET_KEY"] = key


def make_key_file(path):
    """Write a new random key to path (mode 0600) unless another process has
    just done so: the key is written to a draft, then linked into place, so no
    reader ever sees a half-written file and the first writer wins."""
    draft = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE}.")
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        os.link(draft, path)
    except FileExistsError:
        pass
    except OSError as error:
        raise ConfigError(
            f"no SECRET_KEY is configured and {path} cannot be written "
            f"({error.strerror}): set FLASK_SECRET_KEY, or SECRET_KEY in "
            "instance/config.py"
        ) from None
    finally:
        if draft:
            os.unlink(draft)
