"""bench/: the benchmarks are run by hand; this only checks that one still runs."""

import subprocess
import sys

from tests.conftest import PROJECT


def test_the_in_process_bench_runs(python_env):
    bench = [sys.executable, str(PROJECT / "bench" / "in_process.py")]
    result = subprocess.run(
        [*bench, "--rounds", "1", "--calls", "10"],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "starter / bare:" in result.stdout
