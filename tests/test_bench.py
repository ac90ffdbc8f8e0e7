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


def test_the_peer_app_serves_the_bench_routes(python_env):
    probe = (
        "import sys; sys.path.insert(0, 'bench')\n"
        "from peer_app import app\n"
        "client = app.test_client()\n"
        "print(client.get('/bench/json').json['count'], "
        "client.get('/bench/wait').json['waited_ms'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT,
        env=dict(python_env, FLASK_SECRET_KEY="bench"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == "200 20\n", result.stderr
