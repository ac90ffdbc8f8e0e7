"""A real systemd for the deploy tests: a Debian root made once by debootstrap
(cached under ~/.cache/starter-nspawn), booted by systemd-nspawn with a
private network and a throw-away overlay, driven through nsenter.

Needs root, debootstrap and systemd-nspawn (.ci/run installs them); skip()
says why when they are missing.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

SUITE = "bookworm"  # its Python is 3.11: the wheels below are for it
PYTHON = "3.11"
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,curl,wrk,procps,iproute2"
MIRROR = "http://deb.debian.org/debian"
PACKAGES_HOST = "debootstrap systemd-container"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / (
    "starter-nspawn"
)


def missing():
    """Say what this machine lacks for the tests, or "" when it has it all."""
    if os.geteuid() != 0:
        return "needs root (systemd-nspawn)"
    for program in ("debootstrap", "systemd-nspawn", "nsenter"):
        if not shutil.which(program):
            return f"{program} is not installed: apt-get install {PACKAGES_HOST}"
    return ""


def cached(name, make):
    """Return CACHE/name, made by make(folder) first if missing."""
    path = CACHE / name
    CACHE.mkdir(parents=True, exist_ok=True)
    # The tests run in several processes: one makes it, the others wait.
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            draft = CACHE / f"{name}.draft"
            shutil.rmtree(draft, ignore_errors=True)
            make(draft)
            draft.rename(path)
    return path


def debian_root():
    """The Debian root, made by debootstrap once (a few minutes) for PACKAGES."""
    key = hashlib.sha256(f"{SUITE} {PACKAGES}".encode()).hexdigest()[:12]

    def make(folder):
        command = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}"]
        subprocess.run(
            [*command, SUITE, str(folder), MIRROR],
            check=True,
            capture_output=True,
            timeout=1800,
        )

    return cached(f"root-{key}", make)


def wheelhouse(requirements):
    """The wheels of requirements for the root's Python, downloaded as the
    README's offline route does (once for each version of the lock)."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]

    def make(folder):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "-d", str(folder)]
            + ["-r", str(requirements), "--platform", "manylinux2014_x86_64"]
            + ["--python-version", PYTHON, "--only-binary=:all:"],
            check=True,
            timeout=600,
        )

    return cached(f"wheels-{key}", make)


class Machine:
    """A booted container; run() runs a shell command inside, as root."""

    def __init__(self, root, stage, log):
        nspawn = os.environ.get("NSPAWN_DIR", "/run/systemd/nspawn")
        if not os.path.ismount("/run/systemd/system") and not os.path.ismount(nspawn):
            # With no systemd on the host, nspawn needs a place for its files.
            os.makedirs(nspawn, exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", nspawn], check=True)
        self.name = f"starter-{os.getpid()}"
        self.output = open(log, "wb")  # noqa: SIM115 (closed by stop)
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-b", "-D", str(root), "--volatile=overlay"]
            + ["--register=no", "--keep-unit", "--private-network"]
            + [f"--bind-ro={stage}:/stage", "-M", self.name],
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.wait_for(self.init, 60, "the container's systemd")
        state = "systemctl is-system-running"
        self.wait_for(
            lambda: self.run(state).stdout.strip() in ("running", "degraded"),
            60,
            "the container to boot",
        )

    def init(self):
        """The pid of the container's systemd, once it runs."""
        pending = [self.nspawn.pid]
        while pending:
            pid = pending.pop()
            with contextlib.suppress(OSError):
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                if pid != self.nspawn.pid and comm == "systemd":
                    return pid
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                pending += map(int, kids)
        return None

    def wait_for(self, check, timeout, what):
        """Poll check until true and return it; fail naming what after timeout s."""
        deadline = time.monotonic() + timeout
        while not (result := check()):
            assert self.nspawn.poll() is None, "systemd-nspawn exited"
            assert time.monotonic() < deadline, f"{what} within {timeout} s"
            time.sleep(0.2)
        return result

    def run(self, command, timeout=120):
        """Run command with sh inside the container; return the finished process."""
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", "--", "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def check(self, command, timeout=120):
        """Run command inside; fail with its output unless it exits 0."""
        result = self.run(command, timeout)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
        return result.stdout

    def stop(self):
        """Power the container off (its overlay goes with it)."""
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(self.pid, signal.SIGRTMIN + 4)
        try:
            self.nspawn.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.nspawn.pid, signal.SIGKILL)
            self.nspawn.wait(timeout=30)
        self.output.close()
