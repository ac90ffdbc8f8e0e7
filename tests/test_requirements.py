"""The locks: uv.lock from pyproject.toml, requirements.txt and
requirements-dev.txt exported from it, every distribution pinned and hashed."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT

PYPROJECT = PROJECT / "pyproject.toml"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)(.*?)\\?$")


def pins(path):
    """Return {name: version} of the pinned lines of a lock."""
    found = {}
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            found[match[1].lower()] = match[2]
    return found


def entries(path):
    """Return each requirement of a lock with its continuation lines."""
    text = path.read_text()
    return [e for e in re.split(r"\n(?=[A-Za-z])", text) if PIN.match(e)]


def test_every_distribution_is_pinned_with_its_hashes():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for entry in entries(PROJECT / name):
            assert "--hash=sha256:" in entry, f"{name}: no hash for {entry.split()[0]}"


def test_the_direct_dependencies_are_flask_gunicorn_and_dotenv_only():
    text = PYPROJECT.read_text()  # no tomllib on 3.10
    listed = re.search(r"^dependencies = \[(.*)\]$", text, re.M)[1]
    direct = [re.split(r"[~=<>]", each)[0] for each in re.findall(r'"(.*?)"', listed)]
    assert direct == ["flask", "gunicorn", "python-dotenv"]
    assert set(direct) <= set(pins(PROJECT / "requirements.txt"))
    assert 'requires-python = ">=3.10"' in text


def test_the_dev_lock_holds_the_runtime_lock_unchanged():
    runtime = pins(PROJECT / "requirements.txt")
    dev = pins(PROJECT / "requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime


UV = [str(Path(sys.executable).with_name("uv")), "--offline", "--quiet"]
EXPORTS = {
    "requirements.txt": ["--no-dev"],
    "requirements-dev.txt": ["--all-groups"],
}


def test_uv_lock_agrees_with_pyproject():
    check = subprocess.run(
        [*UV, "lock", "--check"], cwd=PROJECT, capture_output=True, text=True
    )
    assert check.returncode == 0, "uv.lock is not pyproject.toml's: sh tests/lock.sh"


@pytest.mark.parametrize("name", EXPORTS)
def test_the_requirements_files_are_exported_from_uv_lock(name):
    export = [*UV, "export", "--frozen", "--no-emit-project", "--no-header"]
    result = subprocess.run(
        [*export, *EXPORTS[name]], cwd=PROJECT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # The file's first two lines: the command that wrote it.
    body = (PROJECT / name).read_text().split("\n", 2)[2]
    assert body == result.stdout, f"{name} is not uv.lock's: sh tests/lock.sh"


def test_conda_takes_conda_forge_only():
    import yaml

    environment = yaml.safe_load((PROJECT / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge", "nodefaults"]
    assert {"pip": ["-r requirements.txt"]} in environment["dependencies"]


@pytest.mark.lifecycle
def test_run_sh_names_a_missing_tool_in_one_line_when_the_index_is_out_of_reach(
    tmp_path,
):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    unreachable = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "VIRTUAL_ENV": str(venv),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",  # nothing listens there
    }
    result = subprocess.run(
        ["sh", str(PROJECT / "tests" / "run.sh")],
        env=unreachable,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    # The first package pip lacks is one a tool needs: the tool is named.
    assert result.stdout.startswith("installing the tools of requirements-dev.txt")
    named = re.match(r"error: (\S+) \(it needs \S+==\S+\) of", result.stderr)
    tools = re.search(r"(?s)^dev = \[(.*?)\]", PYPROJECT.read_text(), re.M)[1]
    assert named and f'"{named[1]}"' in tools, result.stderr
    assert re.fullmatch(
        r"error: \S+ \(it needs \S+==\S+\) of requirements-dev.txt "
        r"is not installed and the "
        r"package index cannot be reached: connect, or install from wheels "
        r"\(docs/offline.md\)\n",
        result.stderr,
    ), result.stderr
