"""Benchmark the starter against a bare Flask app, side by side, on this machine.

Run by hand from the project folder, with wrk installed (apt-get install wrk):

    python bench/run.py             # 5 rounds, 3 s of load per setup and round
    python bench/run.py --rounds 7 --seconds 5

Each round measures every setup once, in turn, so drift hits all of them alike;
the report gives medians with their range (min-max). Load goes to 127.0.0.1 only.
Besides requests/s it reports the server's CPU time per request, read from
/proc: wrk shares the machine, so requests/s also measures the scheduler, while
CPU per request measures the server's own work.
"""

import argparse
import os
import platform
import re
import runpy
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# Servers as users run them: Python caches the bytecode of the project's files
# (pip compiles the installed packages'), so a start does not compile them anew.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
BENCH = PROJECT / "bench"
CORES = os.cpu_count() or 1


def gthread(workers, threads):
    """Return (name, gunicorn options) for the bare app under gthread."""
    options = ["-k", "gthread", "-w", str(workers), "--threads", str(threads)]
    return f"bare gthread {workers}x{threads}", options


def sync(workers):
    """Return (name, gunicorn options) for the bare app under sync workers."""
    return f"bare sync {workers}", ["-k", "sync", "-w", str(workers)]


# The starter's own settings, read from gunicorn.conf.py (with the defaults),
# which imports ops/ from the project folder, as this file does.
sys.path.insert(0, str(PROJECT))
SHIPPED = runpy.run_path(str(PROJECT / "gunicorn.conf.py"))

SAME = gthread(SHIPPED["workers"], SHIPPED["threads"])
# The bare app with the starter's settings first, then the simple alternatives.
BARE_SETUPS = [SAME] + [
    setup
    for setup in [
        sync(2),
        sync(2 * CORES),
        sync(2 * CORES + 1),
        gthread(2, 2),
        gthread(2, 4),
        gthread(4, 2),
        gthread(1, 4),
    ]
    if setup[0] != SAME[0]
]


# The starter writes an access log by default; so does this bare setup, with
# the same line format, so that the two differ only in the app.
def logged(setup, log_folder):
    """Return setup with gunicorn's access log, as the starter writes it."""
    name, options = setup
    log = ["--access-logfile", str(Path(log_folder) / "bare-access.log")]
    log += ["--access-logformat", SHIPPED["access_log_format"]]
    return f"{name} + access log", options + log


SETTLE = 1.0  # seconds between start and load, so that every worker has booted


def free_port():
    """Return a port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_answer(port, began, limit=30):
    """Poll the ping every 2 ms; return the seconds from began (a perf_counter
    time) to its first 200, or None if none came within limit seconds."""
    while not answers(port):
        if time.perf_counter() - began > limit:
            return None
        time.sleep(0.002)
    return time.perf_counter() - began


def answers(port):
    """Say whether /health/ping on port answers 200."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"GET /health/ping HTTP/1.0\r\n\r\n")
            return conn.recv(16).startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))
    except OSError:
        return False


def listening(port):
    """Say whether something accepts connections on port."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wrk(port, seconds):
    """Run wrk against the ping; return its requests/s and request count."""
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{port}/health/ping"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rate, int(re.search(r"(\d+) requests in", out).group(1))


def cpu_seconds(pids):
    """Return the CPU time (user + system) pids have used so far."""
    ticks = 0
    for pid in pids:
        # utime and stime: fields 14 and 15 of /proc/PID/stat, counted from 1;
        # the command name in parentheses may hold spaces: split after it.
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[14 - 3]) + int(fields[15 - 3])
    return ticks / os.sysconf("SC_CLK_TCK")


def load(port, master, seconds):
    """Load the server with wrk; return requests/s and the server's CPU
    microseconds per request (master and workers), which drift less."""
    pids = [master, *children(master)]
    before = cpu_seconds(pids)
    rate, requests = wrk(port, seconds)
    return rate, (cpu_seconds(pids) - before) / requests * 1e6


def rss_kib(pid):
    """Return the resident memory of pid in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))


def children(pid):
    """Return the pids of pid's children."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]


class Starter:
    """A copy of the project run by its own scripts."""

    def __init__(self, folder, **env):
        self.folder = folder
        self.port = free_port()
        self.env = dict(os.environ, PORT=str(self.port), VIRTUAL_ENV=sys.prefix, **env)

    def script(self, name):
        """Run a script; return its wall time in seconds."""
        began = time.perf_counter()
        done = subprocess.run(
            ["sh", str(self.folder / name)],
            env=self.env,
            capture_output=True,
            text=True,
        )
        took = time.perf_counter() - began
        if done.returncode != 0:
            sys.exit(f"error: {name} failed: {done.stderr.strip()}")
        return took

    def start(self):
        """Run start.sh; return the seconds until the app first answered (polled
        meanwhile, as the bare launch is) and until start.sh returned."""
        began = time.perf_counter()
        first = []

        def watch():
            first.append(first_answer(self.port, began))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        returned = self.script("start.sh")
        watcher.join(timeout=30)
        return first[0], returned

    def master(self):
        return int((self.folder / "run" / f"app-{self.port}.pid").read_text())


class Bare:
    """The bare app under plain gunicorn."""

    def __init__(self, options):
        self.options = options
        self.port = free_port()
        self.server = None

    def start(self):
        """Launch gunicorn; return the seconds until the first 200."""
        began = time.perf_counter()
        self.server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--no-control-socket", "-b"]
            + [f"127.0.0.1:{self.port}", *self.options, "bare_app:app"],
            cwd=BENCH,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # A session of its own, as start.sh gives the starter: Linux shares
            # the CPU out per session (autogroup), so this decides how much of
            # it the server gets against wrk.
            start_new_session=True,
        )
        took = first_answer(self.port, began)
        if took is None:
            sys.exit(f"error: bare gunicorn {self.options} did not answer in 30 s")
        return took

    def stop(self):
        """TERM gunicorn; return the seconds until nothing listens."""
        began = time.perf_counter()
        self.server.send_signal(signal.SIGTERM)
        while listening(self.port) or self.server.poll() is None:
            time.sleep(0.002)
        return time.perf_counter() - began


def copy_project(into):
    """Copy the project's tracked files into a folder; return it."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, names.split("\0")):
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / name, into / name)
    return into


def summary(values, unit="", scale=1.0):
    """Return "median (min-max)" of values."""
    median = statistics.median(values) * scale
    return (
        f"{median:,.0f}{unit} ({min(values) * scale:,.0f}-{max(values) * scale:,.0f})"
    )


def main():
    """Measure every setup round by round and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("error: wrk not found; install it with: apt-get install wrk")

    packages = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("flask", "werkzeug", "gunicorn", "python-dotenv")
    )
    print(f"machine: {CORES} cores, {platform.platform()}")
    print(f"python {platform.python_version()}, {packages}")
    print(f"{args.rounds} rounds, {args.seconds} s of wrk -t2 -c32 per setup\n")

    with tempfile.TemporaryDirectory() as tmp:
        folder = copy_project(Path(tmp) / "starter")
        starter = Starter(folder)
        quiet = Starter(folder, ACCESS_LOG="off")
        bare_setups = [logged(SAME, tmp), *BARE_SETUPS]
        # name: [(requests/s, CPU microseconds per request), one per round]
        rates = {name: [] for name in ("starter", "starter ACCESS_LOG=off")}
        rates |= {name: [] for name, _ in bare_setups}
        names = ("start.sh", "start.sh first 200", "bare start", "stop.sh", "bare stop")
        times = {name: [] for name in names}
        memory = {
            k: []
            for k in ("starter master", "starter worker", "bare master", "bare worker")
        }
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}/{args.rounds}", file=sys.stderr)
            first_answer, returned = starter.start()
            times["start.sh first 200"].append(first_answer)
            times["start.sh"].append(returned)
            time.sleep(SETTLE)
            master = starter.master()
            rates["starter"].append(load(starter.port, master, args.seconds))
            memory["starter master"].append(rss_kib(master))
            memory["starter worker"].append(rss_kib(children(master)[0]))
            times["stop.sh"].append(starter.script("stop.sh"))

            quiet.script("start.sh")
            time.sleep(SETTLE)
            rates["starter ACCESS_LOG=off"].append(
                load(quiet.port, quiet.master(), args.seconds)
            )
            quiet.script("stop.sh")

            for name, options in bare_setups:
                bare = Bare(options)
                started = bare.start()
                time.sleep(SETTLE)
                rates[name].append(load(bare.port, bare.server.pid, args.seconds))
                if name == SAME[0]:
                    times["bare start"].append(started)
                    memory["bare master"].append(rss_kib(bare.server.pid))
                    memory["bare worker"].append(rss_kib(children(bare.server.pid)[0]))
                stopped = bare.stop()
                if name == SAME[0]:
                    times["bare stop"].append(stopped)

        restart_failed, kept_alive_failed, stop_start_failed = [], [], []
        starter.script("start.sh")
        for _ in range(args.rounds):
            restart_failed.append(under_load(starter, ["restart.sh"]))
            kept_alive_failed.append(under_load(starter, ["restart.sh"], True))
            stop_start_failed.append(under_load(starter, ["stop.sh", "start.sh"]))
        starter.script("stop.sh")

    report(rates, times, memory, restart_failed, kept_alive_failed, stop_start_failed)


def under_load(starter, scripts, keep_alive=False):
    """Run scripts while wrk (a new connection per request, or kept-alive ones)
    loads the starter; return wrk's failed requests."""
    close = [] if keep_alive else ["-H", "Connection: close"]
    load = subprocess.Popen(
        ["wrk", "-t2", "-c16", "-d4s", *close]
        + [f"http://127.0.0.1:{starter.port}/health/ping"],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)
    for name in scripts:
        starter.script(name)
    out = load.communicate(timeout=60)[0]
    # Socket errors (connect, read, write, timeout) and answers other than 2xx/3xx.
    failed = re.findall(r"(?:connect|read|write|timeout) (\d+)", out)
    failed += re.findall(r"Non-2xx or 3xx responses: (\d+)", out)
    return sum(int(n) for n in failed)


def report(rates, times, memory, restart_failed, kept_alive_failed, stop_start_failed):
    """Print the figures, the ratios that count and the targets."""
    median = statistics.median
    rate = {name: [r for r, _ in values] for name, values in rates.items()}
    cpu = {name: [c for _, c in values] for name, values in rates.items()}
    print("throughput of /health/ping: median (min-max)")
    print(f"  {'':34} {'requests/s':24} server CPU per request")
    for name in rates:
        print(f"  {name:34} {summary(rate[name]):24} {summary(cpu[name], ' us')}")
    print("\ntimes, ms: median (min-max)")
    for name, values in times.items():
        print(f"  {name:34} {summary(values, ' ms', 1000)}")
    print("\nmemory (RSS), KiB: median (min-max)")
    for name, values in memory.items():
        print(f"  {name:34} {summary(values, ' KiB')}")
    print("\nfailed requests under load (wrk -c16), per run")
    print(f"  restart.sh, a new connection per request  {restart_failed}")
    print(f"  restart.sh, kept-alive connections        {kept_alive_failed}")
    print(f"  stop.sh + start.sh, new connections       {stop_start_failed}")

    logged_same = [name for name in rates if name.startswith(f"{SAME[0]} +")][0]
    best = max((name for name, _ in BARE_SETUPS), key=lambda name: median(rate[name]))
    # (what, ratio, the most or least it may be)
    checks = [
        (
            f"starter / {logged_same}",
            median(rate["starter"]) / median(rate[logged_same]),
            (">=", 0.95),
        ),
        (
            f"starter ACCESS_LOG=off / {SAME[0]}",
            median(rate["starter ACCESS_LOG=off"]) / median(rate[SAME[0]]),
            (">=", 0.95),
        ),
        (
            f"shipped settings / best ({best})",
            median(rate[SAME[0]]) / median(rate[best]),
            (">=", 0.95),
        ),
        (
            "starter / bare worker RSS",
            median(memory["starter worker"]) / median(memory["bare worker"]),
            ("<=", 1.15),
        ),
        (
            "start.sh / bare launch to first 200",
            median(times["start.sh"]) / median(times["bare start"]),
            ("<=", 1.5),
        ),
        (
            "stop.sh / bare TERM to gone",
            median(times["stop.sh"]) / median(times["bare stop"]),
            ("<=", 1.5),
        ),
    ]
    print("\nratios that count")
    for name, ratio, (sign, limit) in checks:
        met = ratio >= limit if sign == ">=" else ratio <= limit
        verdict = f"target {sign} {limit}: {'met' if met else 'NOT met'}"
        print(f"  {name:52} {ratio:5.2f}  {verdict}")
    verdict = "met" if not any(restart_failed + kept_alive_failed) else "NOT met"
    failed = sum(restart_failed + kept_alive_failed)
    print(f"  {'restart.sh failed requests':52} {failed:5d}  target 0: {verdict}")
    first = median(times["start.sh first 200"]) / median(times["bare start"])
    print("\nfor information: start.sh returns once every worker has loaded the app")
    print(f"  {'start.sh first 200 / bare launch to first 200':52} {first:5.2f}")
    print("\nfor information, server CPU per request (lower is better)")
    for name, bare in (("starter", logged_same), ("starter ACCESS_LOG=off", SAME[0])):
        ratio = median(cpu[name]) / median(cpu[bare])
        print(f"  {name + ' / ' + bare:52} {ratio:5.2f}")


if __name__ == "__main__":
    main()
