"""The locks: compiled from the .in files, every distribution pinned and hashed."""

import re

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


def test_conda_takes_conda_forge_only():
    import yaml

    environment = yaml.safe_load((PROJECT / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge", "nodefaults"]
    assert {"pip": ["-r requirements.txt"]} in environment["dependencies"]
