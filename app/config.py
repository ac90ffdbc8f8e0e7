"""Load settings in four layers, later wins, UPPERCASE names only in each:

1. config.py in the project folder: the defaults, which declare every setting;
2. instance/config.py, optional: local values and secrets, never committed;
3. FLASK_<NAME> variables from .env, then from the real environment (which wins);
4. test_config, for tests.

Layers 2-4 may set only settings declared in config.py or by Flask itself (a
typo is an error that names the nearest setting). Each setting has one type: its
annotation in config.py (`TRUSTED_HOSTS: list[str] | None = None`), else the
type of its default. Text from the environment is read as that type: lists and
dicts as JSON. Any problem raises ConfigError, one line naming the key, the
layer it came from, and what is expected.
"""

import contextlib
import difflib
import json
import os
import secrets
import tempfile
import traceback
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

# The words a switch (true or false) may be, as in gunicorn.conf.py.
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}

# The flask command's own variables: they steer the command, never the config.
CLI_VARIABLES = {"APP", "DEBUG", "ENV", "ENV_FILE", "SKIP_DOTENV"}

# A setting whose name holds one of these words is a secret: its value is
# never printed (flask settings, error messages).
SECRET_WORDS = {"KEY", "KEYS", "FALLBACKS", "PASSWORD", "PASSWD", "TOKEN", "SECRET"}

# The key made when none is configured, in the instance folder (git-ignored).
KEY_FILE = "secret_key"

# The types of Flask's own settings whose default, None, says nothing of them.
FLASK_TYPES = {
    "PROPAGATE_EXCEPTIONS": bool | None,
    "SECRET_KEY": str | bytes | None,
    "SECRET_KEY_FALLBACKS": list[str] | None,
    "TRUSTED_HOSTS": list[str] | None,
    "SERVER_NAME": str | None,
    "SESSION_COOKIE_DOMAIN": str | None,
    "SESSION_COOKIE_PATH": str | None,
    "SESSION_COOKIE_SAMESITE": str | None,
    "MAX_CONTENT_LENGTH": int | None,
    "SEND_FILE_MAX_AGE_DEFAULT": int | None,
    "TRAP_BAD_REQUEST_ERRORS": bool | None,
    "TEMPLATES_AUTO_RELOAD": bool | None,
}


class ConfigError(Exception):
    """A setting that cannot be used; the message names the key and its source."""


def load_config(app, test_config=None, env_file=None):
    """Fill app.config from the four layers, checking names and types. Where
    each value came from is kept in app.extensions["settings_sources"]."""
    project = Path(app.root_path).parent
    env_file = Path(env_file) if env_file else project / ".env"
    instance_file = Path(app.instance_path) / "config.py"

    defaults, hints = read_pyfile(project / "config.py")
    kinds: dict[str, Any] = {k: type(v) for k, v in {**app.config, **defaults}.items()}
    kinds.update(FLASK_TYPES, **hints)
    sources = dict.fromkeys(app.config, "Flask's default")
    sources.update(dict.fromkeys(defaults, "config.py"))
    app.config.update(defaults)
    layers = [(str(instance_file), read_pyfile(instance_file)[0])]
    layers += environment_layers(env_file)
    layers.append(("test_config", test_config or {}))

    for source, values in layers:
        for key, value in values.items():
            if key == "DEBUG":
                raise ConfigError(
                    f"{source}: DEBUG is not a setting here; "
                    "debug mode comes only from `flask run --debug`"
                )
            if key not in kinds:
                near = difflib.get_close_matches(key, kinds, n=1)
                hint = f"did you mean {near[0]}? Or " if near else ""
                raise ConfigError(
                    f"{source}: {key} is not a setting; {hint}declare it in "
                    "config.py (server settings, such as PORT, take no FLASK_)"
                )
            app.config[key] = convert(key, value, kinds[key], source)
            sources[key] = source
    app.extensions["settings_sources"] = sources


def read_pyfile(path):
    """Return the UPPERCASE names a Python settings file sets ({} if it is
    missing), and the types it declares for them."""
    try:
        code = compile(path.read_bytes(), str(path), "exec")
    except FileNotFoundError:
        return {}, {}
    except SyntaxError as error:
        raise ConfigError(f"{path} line {error.lineno}: {error.msg}") from None
    namespace: dict[str, Any] = {"__file__": str(path)}
    try:
        exec(code, namespace)
        hints = namespace.get("__annotations__", {})
        if "__annotate__" in namespace:  # Python 3.14 computes them on demand
            hints = namespace["__annotate__"](1)
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        line = [frame.lineno for frame in frames if frame.filename == str(path)][-1]
        message = f"{type(error).__name__}: {error}"
        raise ConfigError(f"{path} line {line}: {message}") from None
    values = {key: value for key, value in namespace.items() if key.isupper()}
    return values, {key: hint for key, hint in hints.items() if key.isupper()}


def environment_layers(env_file):
    """Return a layer per FLASK_<NAME> variable: those of .env, then the real ones."""
    try:
        filed = dotenv_values(env_file)
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{env_file} cannot be read: {error}") from None
    layers = []
    for where, variables in ((env_file, filed), ("the environment", os.environ)):
        for name, value in variables.items():
            key = name.removeprefix("FLASK_")
            if key == name or value is None or not key.isupper():
                continue
            if variables is os.environ and filed.get(name) == value:
                continue  # `flask` has put .env's value there
            if key in CLI_VARIABLES or key.startswith("RUN_"):
                continue
            layers.append((f"{name} in {where}", {key: value}))
    return layers


def convert(key, value, kind, source):
    """Return value as kind (e.g. int, or list[str] | None, or str | bytes):
    text is parsed as the first type (lists and dicts as JSON), other values
    are checked against each."""
    kinds = [k for k in typing.get_args(kind) if k is not type(None)]
    optional = type(None) in typing.get_args(kind)
    if not isinstance(kind, types.UnionType):
        kinds = [kind]
    first = typing.get_origin(kinds[0]) or kinds[0]
    if isinstance(value, str) and str not in kinds:
        value = parse(value, first)
    if value is None and (optional or kind is type(None)):
        return None  # JSON's null, from the environment, is None too
    for each in kinds:
        base, items = typing.get_origin(each) or each, typing.get_args(each)
        if base is float and type(value) is int:
            return float(value)
        if base is timedelta and type(value) is int:
            return timedelta(seconds=value)
        if fits(value, base, items):
            return value
    base, items = first, typing.get_args(kinds[0])
    expected = {
        bool: "true or false",
        timedelta: "a whole number of seconds",
        list: "a JSON list" + (f" of {items[0].__name__}" if items else ""),
        dict: "a JSON object",
    }.get(base, base.__name__)
    expected += "".join(f" or {k.__name__}" for k in kinds[1:])
    expected += " or None" if optional else ""
    shown = "a value that is not shown" if is_secret(key) else repr(value)
    raise ConfigError(f"{source}: {key} must be {expected}, not {shown}")


def fits(value, base, items):
    """Say whether value is a base, and for a list, whether its items are items[0]."""
    if base is type(None):  # declared as None with no type: anything goes
        return True
    if not isinstance(value, base) or base is int and isinstance(value, bool):
        return False
    return base is not list or not items or all(isinstance(i, items[0]) for i in value)


def is_secret(name):
    """Say whether setting name holds a secret, whose value is never shown."""
    return any(word in name.split("_") for word in SECRET_WORDS)


def parse(text, kind):
    """Read a text value (from the environment, say) as kind; return the text
    itself when it cannot be read, for the caller to refuse."""
    word = text.strip().lower()
    if kind is bool:
        return word in TRUE_WORDS if word in TRUE_WORDS | FALSE_WORDS else text
    try:
        if kind in (int, float):
            return kind(text)
        if kind is timedelta:
            return timedelta(seconds=int(text))
        if kind in (list, dict):
            return json.loads(text)
    except (ValueError, OverflowError, RecursionError):
        pass
    return text


def ensure_secret_key(app):
    """Use the configured SECRET_KEY, else the one in instance/secret_key, which
    the first start (by any entry point) makes: every later start, reload and
    server of this folder then signs alike, and sessions survive restarts. A
    key configured empty is refused: it would sign with one nobody chose."""
    key, source = app.config["SECRET_KEY"], app.extensions["settings_sources"]
    if isinstance(key, (str, bytes)) and not key.strip():
        raise ConfigError(
            f"{source['SECRET_KEY']}: SECRET_KEY is empty: give FLASK_SECRET_KEY a "
            "key, or remove it (one is then made in instance/secret_key)"
        )
    if any(not old.strip() for old in app.config["SECRET_KEY_FALLBACKS"]):
        raise ConfigError(
            f"{source['SECRET_KEY_FALLBACKS']}: SECRET_KEY_FALLBACKS holds an empty "
            "key, which would accept cookies anyone can sign: remove it"
        )
    instance = Path(app.instance_path)
    if instance.is_dir() and instance.stat().st_uid == os.geteuid():
        with contextlib.suppress(OSError):  # it holds secrets, whatever the umask
            instance.chmod(instance.stat().st_mode & 0o700)
    if key:
        return
    path = instance / KEY_FILE
    if not path.exists():
        make_key_file(path)
        app.logger.info("no SECRET_KEY configured: made one in %s", path)
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"{path} is empty: delete it (a new key is made) or set one")
    app.config["SECRET_KEY"] = key
    app.extensions["settings_sources"]["SECRET_KEY"] = str(path)


def make_key_file(path):
    """Write a new random key to path (mode 0600) unless another process has
    just done so: the key is written to a draft, then linked into place, so no
    reader ever sees a half-written file and the first writer wins."""
    draft = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
