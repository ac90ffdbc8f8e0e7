"""Server settings, shared by gunicorn.conf.py and the control scripts.

Each comes from the real environment, else from the project's .env, else its
default. .env has python-dotenv syntax (quotes, `export`, ${VAR}), so it is read
here and never sourced by sh. A bad value raises SettingError naming the variable.
"""

import os
import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
HOST_PATTERN = re.compile(r"[A-Za-z0-9.:\-]+|\[[0-9A-Fa-f:.]+\]")


class SettingError(Exception):
    """A server setting with a value that cannot be used."""


def read():
    """Return the checked server settings as a dict, read afresh each call."""
    dotenv = env_file_values(PROJECT / ".env")

    def get(name, default):
        """Return (name, value, where the value came from) for one variable."""
        if os.environ.get(name, "").strip():
            return name, os.environ[name].strip(), "the environment"
        if (dotenv.get(name) or "").strip():
            return name, dotenv[name].strip(), str(PROJECT / ".env")
        return name, default, "the defaults"

    return {
        "HOST": host(*get("HOST", "127.0.0.1")),
        "PORT": number(*get("PORT", "5000"), 1, 65535),
        "WEB_CONCURRENCY": number(*get("WEB_CONCURRENCY", "2"), 1, 64),
        "LOG_LEVEL": log_level(*get("LOG_LEVEL", "info")),
        "GRACEFUL_TIMEOUT": number(*get("GRACEFUL_TIMEOUT", "30"), 1, 3600),
        "START_TIMEOUT": number(*get("START_TIMEOUT", "30"), 1, 3600),
        "ACCESS_LOG": switch(*get("ACCESS_LOG", "on")),
    }


def env_file_values(path):
    """Return the variables in the .env file at path; none if there is no file."""
    if not path.is_file():
        return {}
    # Imported only when needed: python-dotenv takes about 20 ms to import, which
    # every script and every server start would pay before doing anything.
    from dotenv import dotenv_values

    return dotenv_values(path)


def number(name, text, where, low, high):
    """Return text as a whole number from low to high."""
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise SettingError(
            f"{name}={text!r} in {where}: use a whole number from {low} to {high}"
        )
    return int(text)


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


def switch(name, text, where):
    """Return text as on (True) or off (False)."""
    word = text.lower()
    if word not in ("on", "off", "true", "false", "yes", "no", "1", "0"):
        raise SettingError(f"{name}={text!r} in {where}: use on or off")
    return word in ("on", "true", "yes", "1")


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
