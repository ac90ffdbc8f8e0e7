"""Start, stop, reload and check the server: the work behind start.sh, stop.sh,
restart.sh and status.sh, which run `python ops/serverctl.py COMMAND`.

Settings come from ops/settings.py (the environment, then .env). One instance
per port: run/app-PORT.pid, logs/app-PORT.log and logs/access-PORT.log. A
pidfile is trusted only when it names a live gunicorn running in this project
folder. Processes are read from /proc on Linux (ps and lsof elsewhere, e.g.
macOS for development), so a server needs neither curl nor ps. Each step
prints one line; errors go to stderr.
"""

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops import settings  # noqa: E402 (needs the project folder on sys.path)

PROJECT = os.path.realpath(settings.PROJECT)
APP = os.path.basename(PROJECT)
POLL = 0.005  # seconds between checks: scripts return soon after the fact


class Failure(Exception):
    """A step that failed; the message says why, and what to do."""


class Instance:
    """This project's server on one port: its settings, pidfile and logs."""

    def __init__(self):
        self.settings = settings.read()
        port = self.settings["PORT"]
        self.pidfile = Path(PROJECT, "run", f"app-{port}.pid")
        self.log = Path(PROJECT, "logs", f"app-{port}.log")
        self.access_log = Path(PROJECT, "logs", f"access-{port}.log")
        self.bind = settings.bind_address(self.settings)
        self.url = settings.local_url(self.settings)


def main(argv):
    """Run the command named by argv[1]; return the exit code."""
    commands = {
        "start": start,
        "stop": stop,
        "restart": restart,
        "status": status,
        "check-app": check_app_command,
        "reopen-logs": reopen_logs,
    }
    if len(argv) != 2 or argv[1] not in commands:
        print(f"usage: serverctl.py {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    try:
        return commands[argv[1]]()
    except (Failure, settings.SettingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def say(message):
    """Print one line now (the scripts' output is often a pipe)."""
    print(message, flush=True)


# The commands ----------------------------------------------------------------


def start():
    """start.sh: start the server in the background; return once it answers."""
    server = Instance()
    pid = find_server(server)
    if pid:
        say(f"{APP} is already running (pid {pid})")
        return 0
    return start_server(server)


def stop():
    """stop.sh: TERM, wait for in-flight requests, KILL what is left, and
    return once nothing listens on the port."""
    server = Instance()
    pid = find_server(server)
    if not pid:
        say(f"{APP} is not running")
        return 0
    grace = server.settings["GRACEFUL_TIMEOUT"]
    if stop_server(pid, grace + 5):
        print(f"{APP} did not stop within {grace} s: killed", file=sys.stderr)
    while port_in_use(server.settings):
        time.sleep(POLL)
    server.pidfile.unlink(missing_ok=True)  # gunicorn's own, unless killed
    say(f"stopped {APP} (pid {pid})")
    return 0


def restart():
    """restart.sh: check that the app loads, then HUP (new workers, old ones
    retired gracefully: no request dropped). Start when not running."""
    server = Instance()
    pid = find_server(server)
    if not pid:
        return start_server(server)
    # A HUP with code that does not import takes the whole server down.
    error = check_app()
    if error:
        kept = f"{APP} (pid {pid}) keeps running the old code"
        raise Failure(f"the app does not load: {error}; {kept}")
    reload(server, pid)
    say(f"reloaded {APP} (pid {pid})")
    return 0


def status():
    """status.sh: exit 0 running and answering, 1 not running with a stale
    pidfile (left in place), 3 not running, 4 running but not answering."""
    server = Instance()
    pid = find_server(server, remove_stale=False)
    if pid and ping(server.url, timeout=2.0):
        say(f"{APP} is running (pid {pid}) at http://{server.bind}")
        return 0
    if pid:
        say(f"{APP} is running (pid {pid}) but {server.url} does not answer")
        return 4
    if server.pidfile.exists():
        return 1
    say(f"{APP} is not running")
    return 3


def check_app_command():
    """Exit 1 printing why when the app does not import (systemd's ExecReload)."""
    error = check_app()
    if error:
        print(f"error: the app does not load: {error}", file=sys.stderr)
        return 1
    return 0


def reopen_logs():
    """logrotate's postrotate: USR1 to each running server of this project
    (gunicorn then reopens its log files), and to no other process."""
    for pidfile in sorted(Path(PROJECT, "run").glob("app-*.pid")):
        pid = read_pid(pidfile)
        if pid and is_ours(pid):
            os.kill(pid, signal.SIGUSR1)
    return 0


# Steps -------------------------------------------------------------------------


def find_server(server, remove_stale=True):
    """Return the pid of our server on this port, or None. A stale pidfile
    (no pid, a dead one, or not our gunicorn) is reported and removed, never
    acted on."""
    if not server.pidfile.exists():
        return None
    pid = read_pid(server.pidfile)
    if pid and is_ours(pid):
        return pid
    if pid is None:
        why = "it holds no pid"
    elif not alive(pid):
        why = f"pid {pid} is not running"
    else:
        why = f"pid {pid} is another program, left alone"
    if remove_stale:
        server.pidfile.unlink(missing_ok=True)
        say(f"removed stale pidfile run/{server.pidfile.name}: {why}")
    else:
        say(f"stale pidfile run/{server.pidfile.name}: {why}")
    return None


def start_server(server):
    """Launch the server and say where it runs."""
    pid = launch(server)
    say(f"started {APP} (pid {pid}) at http://{server.bind}, logs in logs/")
    return 0


def launch(server):
    """Start gunicorn detached; return its pid once every worker has loaded the
    app and the ping answers. On failure stop it, remove its pidfile and raise."""
    if port_in_use(server.settings):
        raise Failure(
            f"{server.bind} is already in use by another program; "
            "stop it or choose another port, e.g. PORT=5001 sh start.sh"
        )
    server.pidfile.parent.mkdir(exist_ok=True)
    server.log.parent.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "gunicorn", "--pid", str(server.pidfile)]
    command += ["--error-logfile", str(server.log), "--capture-output"]
    if server.settings["ACCESS_LOG"]:
        command += ["--access-logfile", str(server.access_log)]
    log_start = server.log.stat().st_size if server.log.exists() else 0
    with open(server.log, "ab") as log:
        # A session of its own: the server outlives the script, and its process
        # group (id = its pid) holds just it and its workers. Its output goes to
        # the log from the first instant: a bad setting fails before gunicorn
        # opens any log.
        process = subprocess.Popen(
            command,
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    timeout = server.settings["START_TIMEOUT"]
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            why = f"gunicorn exited with code {process.returncode}"
            break
        if (
            ready_workers(server.log, log_start) >= server.settings["WEB_CONCURRENCY"]
            and read_pid(server.pidfile) == process.pid
            and ping(server.url)
        ):
            return process.pid
        if time.monotonic() > deadline:
            why = f"{server.url} did not answer within {timeout} s"
            break
        time.sleep(POLL)
    stop_server(process.pid, 5)
    if read_pid(server.pidfile) == process.pid:
        server.pidfile.unlink()
    error = last_error(server.log, log_start)
    raise Failure(f"start failed: {why}: {error} (see logs/{server.log.name})")


def log_since(logfile, offset):
    """Return what was written to logfile after offset, as bytes."""
    with open(logfile, "rb") as log:
        log.seek(offset)
        return log.read()


def ready_workers(logfile, offset):
    """Count the "worker ready" lines (gunicorn.conf.py) written after offset."""
    return log_since(logfile, offset).count(b" gunicorn.ready: worker ready ")


def last_error(logfile, offset):
    """Return the line of the log (after offset) that best says what went wrong."""
    lines = log_since(logfile, offset).decode(errors="replace").splitlines()
    for line in lines:  # the first exception line, e.g. "ConfigError: ..."
        head = line.split(":", 1)[0]
        if line and not line[0].isspace() and head.endswith(("Error", "Exception")):
            return line
    for line in lines:
        if " ERROR " in line:
            return line.split(": ", 1)[-1]
    return lines[-1] if lines else "nothing was logged"


def stop_server(pid, wait):
    """TERM our server pid and wait for it and its workers; KILL them after
    wait seconds. Return True when they had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_gone(pid, wait):
        return False
    # Our server leads its own process group, which holds only it and its
    # workers; the id of a group that still has members is never reused.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    wait_gone(pid, 10)
    return True


def wait_gone(pid, wait):
    """Wait up to wait seconds for pid and its process group to end; say if they did."""
    deadline = time.monotonic() + wait
    while alive(pid) or group_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def check_app():
    """Import the app as a gunicorn worker would; return why it fails, or None."""
    os.chdir(PROJECT)
    os.environ["_APP_SECRET_KEY_WARNED"] = "1"  # a trial, not a server
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            import wsgi  # noqa: F401
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def reload(server, pid):
    """HUP our server; wait until its new workers have loaded the app, the old
    ones are gone, and it answers."""
    old = workers(pid)
    log_start = server.log.stat().st_size
    os.kill(pid, signal.SIGHUP)
    timeout = server.settings["START_TIMEOUT"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            error = last_error(server.log, log_start)
            raise Failure(f"the server stopped during the reload: {error}")
        if (
            ready_workers(server.log, log_start) >= server.settings["WEB_CONCURRENCY"]
            and not workers(pid) & old
            and ping(server.url)
        ):
            return
        time.sleep(POLL)
    raise Failure(
        f"the reload did not finish within {timeout} s; see logs/{server.log.name}"
    )


# Processes -----------------------------------------------------------------------


def stat_fields(pid):
    """Return the fields of /proc/PID/stat after the command name (state first,
    then parent pid and process group), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces: split after it.
    return stat[stat.rindex(")") + 2 :].split()


def process_table():
    """Return {pid: (parent pid, process group, state)} for every process."""
    table = {}
    if os.path.isdir("/proc/self"):
        for name in filter(str.isdigit, os.listdir("/proc")):
            fields = stat_fields(name)
            if fields:
                table[int(name)] = (int(fields[1]), int(fields[2]), fields[0])
        return table
    ps = ["ps", "-A", "-o", "pid=,ppid=,pgid=,stat="]
    for line in subprocess.run(ps, capture_output=True, text=True).stdout.splitlines():
        pid, ppid, pgid, state = line.split()[:4]
        table[int(pid)] = (int(ppid), int(pgid), state[0])
    return table


def process_state(pid):
    """Return the state letter of pid (R, S, Z ...), or None if it does not exist."""
    if os.path.isdir("/proc/self"):
        fields = stat_fields(pid)
        return fields[0] if fields else None
    ps = ["ps", "-o", "stat=", "-p", str(pid)]
    state = subprocess.run(ps, capture_output=True, text=True).stdout.strip()
    return state[:1] or None


def alive(pid):
    """Say whether pid runs; a zombie (Z) has finished and is not alive."""
    return process_state(pid) not in (None, "Z")


def command_and_folder(pid):
    """Return the command-line words and the working folder of pid."""
    if os.path.isdir("/proc/self"):
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        words = [word.decode(errors="replace") for word in words]
        return words, os.readlink(f"/proc/{pid}/cwd")
    ps = ["ps", "-o", "command=", "-p", str(pid)]
    words = subprocess.run(ps, capture_output=True, text=True).stdout.split()
    lsof = ["lsof", "-a", "-d", "cwd", "-Fn", "-p", str(pid)]
    out = subprocess.run(lsof, capture_output=True, text=True).stdout.splitlines()
    return words, next((line[1:] for line in out if line.startswith("n")), "")


def is_ours(pid, folder=PROJECT):
    """Say whether pid is a live gunicorn running in folder (this project's)."""
    if not alive(pid):
        return False
    try:
        words, cwd = command_and_folder(pid)
    except OSError:  # gone meanwhile, or another user's process
        return False
    return cwd == folder and any("gunicorn" in word for word in words)


def group_alive(pgid):
    """Say whether any process of group pgid is alive (zombies aside)."""
    return any(g == pgid and s != "Z" for _, g, s in process_table().values())


def workers(master):
    """Return the pids of master's live children."""
    return {
        pid
        for pid, (ppid, _, state) in process_table().items()
        if ppid == master and state != "Z"
    }


def read_pid(pidfile):
    """Return the pid in pidfile, or None when it is missing or not a number."""
    try:
        text = Path(pidfile).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# The network ---------------------------------------------------------------------


def ping(url, timeout=1.0):
    """Say whether url (http://HOST:PORT/PATH) answers 200."""
    address, path = url.removeprefix("http://").split("/", 1)
    host, _, port = address.rpartition(":")
    request = f"GET /{path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode()
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout) as conn:
            conn.sendall(request)
            status_line = conn.makefile("rb").readline()
    except OSError:
        return False
    return status_line.split(b" ")[1:2] == [b"200"]


def port_in_use(values):
    """Say whether something listens on HOST:PORT of the settings values.

    The test binds as gunicorn does (SO_REUSEADDR), so a port that only holds
    connections in TIME_WAIT after a stop counts as free.
    """
    host = values["HOST"].strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, values["PORT"]))
        except OSError:
            return True
    return False


if __name__ == "__main__":
    sys.exit(main(sys.argv))
