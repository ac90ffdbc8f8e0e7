"""docs/database.md's recipe, built from the page into a copy of the project and
run under the real gunicorn with the app preloaded and two workers: every
connection is opened in the worker that uses it. The unsafe way, a connection
opened while the app loads, is warned of in the log."""

import concurrent.futures
import json
import re
import socket
import subprocess
import sys

import pytest

from tests.conftest import PROJECT

PAGES = ["docs/database.md", "docs/database.zh-CN.md"]
# Records, in the copy, which process opened each connection.
WHO = """
import os
import sqlite3

from app import db

OPENED_IN = {}
_connect = sqlite3.connect


def recorded(*args, **kwargs):
    connection = _connect(*args, **kwargs)
    OPENED_IN[id(connection)] = os.getpid()
    return connection


sqlite3.connect = recorded


@app.get("/who")
def who():
    opened_in = OPENED_IN[id(db.get_db())]
    return {"worker": os.getpid(), "master": os.getppid(), "opened_in": opened_in}
"""
WARNING = "while it loaded: every worker shares it"


def build_recipe(project, page):
    """Add the page's database module, setting and factory lines to project."""
    code = re.findall(r"```python\n(.*?)```", (PROJECT / page).read_text(), re.S)
    module, setting, imports, init = code[:4]
    assert module.startswith("# app/db.py")
    (project / "app" / "db.py").write_text(module)
    with open(project / "config.py", "a") as config:
        config.write("\n" + setting)
    factory = project / "app" / "__init__.py"
    text = re.sub(r"^ +from app import .*\n", imports, factory.read_text(), flags=re.M)
    anchor = "    health.init_app(app)\n"
    factory.write_text(text.replace(anchor, init + anchor))
    for check in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *check, "app", "config.py"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("page", PAGES)
def test_the_recipe_opens_each_connection_in_its_worker(site, page):
    build_recipe(site.path, page)
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write(WHO)
    assert site.run("start.sh").returncode == 0
    try:
        assert site.get("/health/ready") == (200, '{"status":"ok"}\n')
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: site.get("/who"), range(80)))
        seen = [json.loads(body) for code, body in answers if code == 200]
        assert len(seen) == 80, answers
        assert all(each["opened_in"] == each["worker"] for each in seen)
        assert {each["worker"] for each in seen}.isdisjoint({site.pid()})
        assert WARNING not in site.log()
    finally:
        site.run("stop.sh")


def test_a_database_opened_while_the_app_loads_is_warned_of(site):
    build_recipe(site.path, PAGES[0])
    with open(site.path / "app" / "db.py", "a") as module:
        module.write("\nSHARED = sqlite3.connect('shared.db')  # the unsafe way\n")
    assert site.run("start.sh").returncode == 0
    site.run("stop.sh")
    assert f"the app opened {site.path}/shared.db {WARNING}" in site.log()


def test_a_socket_opened_while_the_app_loads_is_warned_of(site):
    with socket.socket() as database:
        database.bind(("127.0.0.1", 0))
        database.listen()
        port = database.getsockname()[1]
        with open(site.path / "wsgi.py", "a") as wsgi:
            wsgi.write("\nimport socket\n")
            wsgi.write(f"SHARED = socket.create_connection(('127.0.0.1', {port}))\n")
        assert site.run("start.sh").returncode == 0
        site.run("stop.sh")
    assert f"the app opened a socket {WARNING}" in site.log()
