"""The locks: compiled from the .in files, every distribution pinned and hashed."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import PROJECT

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
    lines = (PROJECT / "requirements.in").read_text().splitlines()
    direct = [line.split("~=")[0] for line in lines if line and line[0] != "#"]
    assert direct == ["flask", "gunicorn", "python-dotenv"]
    assert set(direct) <= set(pins(PROJECT / "requirements.txt"))


def test_the_dev_lock_holds_the_runtime_lock_unchanged():
    runtime = pins(PROJECT / "requirements.txt")
    dev = pins(PROJECT / "requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_each_lock_pins_every_package_of_its_in_file():
    for name in ("requirements", "requirements-dev"):
        lines = (PROJECT / f"{name}.in").read_text().splitlines()
        direct = {re.split(r"[~=<>]", line)[0] for line in lines if line[:1].isalpha()}
        missing = direct - set(pins(PROJECT / f"{name}.txt"))
        assert not missing, (
            f"{name}.txt lacks {missing}: compile it (README: Dependencies)"
        )


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
    assert re.fullmatch(
        r"error: \S+==\S+ of requirements-dev.txt is not installed and the "
        r"package index cannot be reached: connect, or install from wheels "
        r"\(README: Offline environments\)\n",
        result.stderr,
    ), result.stderr
