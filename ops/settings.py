"""Server settings, and the files of each server instance: shared by
gunicorn.conf.py and ops/serverctl.py, so each name is spelled here only.

Each setting comes from the real environment, else the project's .env, else its
default. .env has python-dotenv syntax (quotes, `export`, ${VAR}), so it is read
here and never sourced by sh. A bad value raises SettingError naming the
variable and where it came from.
"""

import difflib
import json
import os
import re
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
RUN = PROJECT / "run"
LOGS = PROJECT / "logs"
# Set by start.sh for gunicorn: the path of the record it reads its settings from.
RECORD_VARIABLE = "SERVERCTL_RECORD"
# On /health/ping answers: the pid of the master whose worker answered.
MASTER_HEADER = "X-Master-Pid"
# (record, settings) a running master loaded first: gunicorn.conf.py falls back
# to them when the files it reads again on a HUP have gone bad.
in_force = None
# The words a switch (a boolean) may be, here and in the app's settings.
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
HOST_PATTERN = re.compile(r"[A-Za-z0-9.:\-]+|\[[0-9A-Fa-f:.]+\]")


class SettingError(Exception):
    """A server setting with a value that cannot be used."""


def pidfile(port):
    """gunicorn's own pidfile; `<pidfile>.2` names a new master during a reload."""
    return RUN / f"app-{port}.pid"


def record(port):
    """The record start.sh keeps: the master's pid, its start time, the settings."""
    return RUN / f"app-{port}.json"


def error_log(port):
    return LOGS / f"app-{port}.log"


def access_log(port):
    return LOGS / f"access-{port}.log"


def drain_file(port):
    """Present while stop.sh drains the server: /health/ready answers 503.
    Under systemd, in the unit's runtime folder (the project is read-only)."""
    return Path(os.environ.get("RUNTIME_DIRECTORY") or RUN) / f"app-{port}.drain"


def draining():
    """Say whether this server is draining (in gunicorn's processes)."""
    return in_force is not None and drain_file(in_force[1]["PORT"]).exists()


def launched_by_start():
    """Return the record start.sh wrote for this gunicorn, or None."""
    path = os.environ.get(RECORD_VARIABLE)
    return json.loads(Path(path).read_text()) if path else None


def read(strict=True, sources=None):
    """Return the checked settings as a dict, read afresh each call.

    With strict=False a bad value is replaced by its default with a warning, so
    that stop.sh and status.sh work whatever state .env is in. A dict given as
    sources gets, for each name, where its value came from.
    """
    try:
        dotenv = env_file_values(PROJECT / ".env")
    except SettingError as error:
        if strict:
            raise
        print(f"warning: {error}; reading none of it meanwhile", file=sys.stderr)
        dotenv = {}
    for name in dotenv:
        # Close (0.85), or two neighbouring letters swapped in a short name
        # (PROT); the app's own variables (APP_LOG_LEVEL, DB_PORT) are not.
        near = difflib.get_close_matches(name, SETTINGS, n=1, cutoff=0.85)
        near = near or [known for known in SETTINGS if swapped(name, known)]
        if near and name not in SETTINGS:
            error = f"{name} in {PROJECT / '.env'} is not a setting"
            error += f": did you mean {near[0]}?"
            if strict:
                raise SettingError(error)
            print(f"warning: {error}", file=sys.stderr)
    values = {}
    for name, (default, check) in SETTINGS.items():
        text, where = source(name, dotenv)
        try:
            values[name] = check(name, text, where)
        except SettingError as error:
            if strict:
                raise
            print(f"warning: {error}; using {default} meanwhile", file=sys.stderr)
            values[name], where = check(name, default, "default"), "default"
        if sources is not None:
            sources[name] = where
    return values


def source(name, dotenv):
    """Return the text of setting name and where it came from: the environment,
    else .env (whose variables are dotenv), else the default."""
    given = os.environ.get(name, "").strip()
    filed = (dotenv.get(name) or "").strip()
    if given and given != filed:  # equal: `flask` has put .env's value there
        return given, "the environment"
    if filed:
        return filed, str(PROJECT / ".env")
    return SETTINGS[name][0], "default"


def swapped(name, known):
    """Say whether name is known with two neighbouring letters swapped."""
    return len(name) == len(known) and any(
        name == known[:i] + known[i + 1] + known[i] + known[i + 2 :]
        for i in range(len(known) - 1)
    )


def read_one(name):
    """Return the checked value of setting name alone (for the app under
    `flask`, which needs only LOG_LEVEL); raise SettingError when it is bad."""
    text, where = source(name, env_file_values(PROJECT / ".env"))
    return SETTINGS[name][1](name, text, where)


def env_file_values(path):
    """Return the variables in the .env file at path; none if there is no file."""
    if not path.is_file():
        return {}
    # Imported only when needed: python-dotenv takes about 20 ms to import, which
    # every script and every server start would pay before doing anything.
    from dotenv import dotenv_values

    try:
        return dotenv_values(path)
    except (OSError, UnicodeDecodeError) as error:
        raise SettingError(f"{path} cannot be read: {error}") from None


def number(low, high):
    """Return a check that reads a whole number from low to high."""

    def check(name, text, where):
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise SettingError(
                f"{name}={text!r} in {where}: use a whole number from {low} to {high}"
            )
        return int(text)

    return check


def host(name, text, where):
    """Return text if it looks like a host name or an IP address."""
    if not HOST_PATTERN.fullmatch(text):
        raise SettingError(
            f"{name}={text!r} in {where}: use an address such as 127.0.0.1 or 0.0.0.0"
        )
    return text


def log_level(name, text, where):
    """Return text as one of gunicorn's log levels."""
    if text.lower() not in LOG_LEVELS:
        raise SettingError(
            f"{name}={text!r} in {where}: use one of {', '.join(LOG_LEVELS)}"
        )
    return text.lower()


def log_format(name, text, where):
    """Return text as text (lines for people) or json (one object per line)."""
    if text.lower() not in ("text", "json"):
        raise SettingError(f"{name}={text!r} in {where}: use text or json")
    return text.lower()


def switch(name, text, where):
    """Return text as on (True) or off (False)."""
    word = text.lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise SettingError(f"{name}={text!r} in {where}: use on or off")
    return word in TRUE_WORDS


# name: (default, check)
SETTINGS = {
    "HOST": ("127.0.0.1", host),
    "PORT": ("5000", number(1, 65535)),
    "WEB_CONCURRENCY": ("2", number(1, 64)),
    "LOG_LEVEL": ("info", log_level),
    "GRACEFUL_TIMEOUT": ("30", number(1, 3600)),
    "START_TIMEOUT": ("30", number(1, 3600)),
    "ACCESS_LOG": ("on", switch),
    "HEALTH_ACCESS_LOG": ("on", switch),
    "DRAIN_SECONDS": ("0", number(0, 3600)),
    "LOG_FORMAT": ("text", log_format),
}


def bind_address(settings):
    """Return HOST:PORT as gunicorn's bind wants it."""
    return f"{bracketed(settings['HOST'])}:{settings['PORT']}"


def local_url(settings):
    """Return the ping URL to poll here: a wildcard bind answers on loopback."""
    wildcards = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}
    address = wildcards.get(settings["HOST"], settings["HOST"])
    return f"http://{bracketed(address)}:{settings['PORT']}/health/ping"


def bracketed(address):
    """Put an IPv6 address in brackets, as URLs and gunicorn's bind need."""
    if ":" in address and not address.startswith("["):
        return f"[{address}]"
    return address
