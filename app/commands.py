"""`flask settings`: every setting in force, its value and where it came from."""

import re
import runpy
from pathlib import Path

import click
from flask import current_app

from app.config import is_secret


def init_app(app):
    """Add the app's commands to the flask command."""
    app.cli.command("settings")(show_settings)


def show_settings():
    """Print every setting in force, its value and where it came from."""
    # The server's settings have one reader, gunicorn.conf.py: run it.
    server = runpy.run_path(
        str(Path(current_app.root_path).parent / "gunicorn.conf.py")
    )
    for problem in server["problems"]:
        click.echo(f"warning: {problem}; using the default meanwhile", err=True)
    click.echo("Server settings (start.sh, gunicorn.conf.py; no prefix):")
    for name, value in server["values"].items():
        click.echo(line(name, value, server["sources"][name]))
    click.echo("App settings (app.config; FLASK_<NAME> in .env or the environment):")
    sources = current_app.extensions["settings_sources"]
    for key in sorted(current_app.config.keys() - {"DEBUG"}):  # `flask run --debug`'s
        click.echo(line(key, current_app.config[key], sources.get(key, "Flask")))


def line(name, value, source):
    """Return one line of the listing; a secret's value is masked, and so is
    the password in a URL (postgresql://user:********@host/db)."""
    if is_secret(name) and value:
        value = "********"
    elif not isinstance(value, str):
        value = repr(value)
    value = re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1********@", value)
    return f"  {name} = {value}  [{source}]"
