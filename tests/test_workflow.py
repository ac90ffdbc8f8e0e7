"""The users' CI (.github/): clean under zizmor and GitHub's schemas, checked
offline, and running the README's test command on every supported Python."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT

WORKFLOW = PROJECT / ".github" / "workflows" / "ci.yml"
DEPENDABOT = PROJECT / ".github" / "dependabot.yml"
TOOLS = Path(sys.executable).parent


@pytest.fixture(scope="module")
def workflow():
    """The parsed workflow."""
    return yaml.safe_load(WORKFLOW.read_text())


def check(tool, *arguments):
    """Run a checker of the development lock offline; return its result."""
    return subprocess.run(
        [str(TOOLS / tool), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def zizmor(folder):
    """zizmor's most thorough persona, with no network."""
    return check("zizmor", "--offline", "--persona=pedantic", folder)


def schema(name, path):
    """GitHub's schema named name (vendored in check-jsonschema) against path."""
    return check("check-jsonschema", "--builtin-schema", f"vendor.{name}", path)


def steps(workflow):
    """Every step of every job."""
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_zizmor_finds_nothing():
    result = zizmor(PROJECT / ".github")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_files_follow_githubs_schemas():
    for name, path in (("github-workflows", WORKFLOW), ("dependabot", DEPENDABOT)):
        result = schema(name, path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_checkers_catch_a_misspelt_key_and_an_unpinned_action(tmp_path):
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    text = WORKFLOW.read_text()
    misspelt = folder / "misspelt.yml"
    misspelt.write_text(text.replace("runs-on:", "runs_on:"))
    assert schema("github-workflows", misspelt).returncode != 0
    misspelt.unlink()
    (folder / "unpinned.yml").write_text(
        re.sub(r"actions/checkout@\S+", "actions/checkout@v7", text)
    )
    assert zizmor(tmp_path / ".github").returncode != 0


def test_it_runs_the_readme_test_command_on_python_3_10_to_3_14(workflow):
    matrix = workflow["jobs"]["test"]["strategy"]["matrix"]
    assert matrix["python"] == ["3.10", "3.11", "3.12", "3.13", "3.14"]
    runs = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "sh tests/run.sh" in runs
    assert "sh tests/run.sh" in (PROJECT / "README.md").read_text()


def test_the_root_tests_run_once_as_root(workflow):
    runs = " ".join(step.get("run", "") for step in workflow["jobs"]["deploy"]["steps"])
    assert "sudo" in runs
    names = ["test_systemd.py", "test_container.py", "test_compose.py"]
    for name in [*names, "test_offline_install.py"]:
        assert f"tests/{name}" in runs


def test_least_privilege_and_no_persisted_credentials(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        assert "permissions" not in job
    checkouts = [
        s for s in steps(workflow) if s.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_every_action_is_pinned_to_a_commit_with_its_version():
    uses = re.findall(r"uses: (\S+)(.*)", WORKFLOW.read_text())
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+(\.\d+)*", comment), f"{action}{comment}"


def test_the_locks_are_audited(workflow):
    audit = [s for s in steps(workflow) if "pip-audit" in s.get("uses", "")]
    assert audit
    assert audit[0]["with"]["inputs"].split() == [
        "requirements.txt",
        "requirements-dev.txt",
    ]


def test_dependabot_updates_the_locks_and_the_actions_weekly():
    updates = yaml.safe_load(DEPENDABOT.read_text())["updates"]
    # uv: it updates uv.lock, which test_requirements.py holds the exports to.
    assert {u["package-ecosystem"] for u in updates} == {"uv", "github-actions"}
    for update in updates:
        assert update["schedule"]["interval"] == "weekly"
        assert update["groups"]
