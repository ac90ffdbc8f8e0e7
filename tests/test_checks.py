"""The checks of tests/run.sh and pre-commit catch what they promise: mypy a
setting of config.py or a view of the wrong type; pre-commit runs offline."""

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_mypy_catches_a_setting_and_a_view_of_the_wrong_type(project):
    with open(project / "config.py", "a") as config:
        config.write('\nWORKERS_PER_QUEUE: int = "4"\n')
    with open(project / "app" / "health.py", "a") as health:
        health.write(
            '\n\n@bp.get("/count/<int:n>")\ndef count(n: int) -> dict[str, int]:\n'
            '    return {"n": str(n)}\n'
        )
    result = subprocess.run(
        [BIN / "mypy", "--cache-dir", project / ".mypy_cache"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert [error.split(":")[0] for error in errors] == ["config.py", "app/health.py"]


def test_pre_commit_runs_every_hook_offline(project):
    git = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=project, check=True)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env["PRE_COMMIT_HOME"] = str(project / ".pre-commit-cache")
    result = subprocess.run(
        [BIN / "pre-commit", "run", "--all-files"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stdout.splitlines() if line.endswith("Passed")]
    assert len(passed) == 5, result.stdout
