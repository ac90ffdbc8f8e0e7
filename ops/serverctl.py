"""What the control scripts cannot do well in plain sh, one command each.

Run with the project's Python: `python ops/serverctl.py COMMAND ARGS...`.
It needs no curl and no ps on Linux: processes are read from /proc (ps is the
fallback elsewhere, e.g. macOS for development). Errors are one line on stderr.
"""

import contextlib
import http.client
import io
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops import settings  # noqa: E402 (needs the project folder on sys.path)

PROJECT = os.path.realpath(settings.PROJECT)
POLL = 0.01  # seconds between checks: start and stop return soon after the fact


def main(argv):
    """Run the command named by argv[1]; return the exit code."""
    commands = {
        "settings": print_settings,
        "owner": owner,
        "ping": ping_command,
        "launch": launch,
        "stop": stop,
        "check-app": check_app,
        "reload": reload,
        "reopen-logs": reopen_logs,
    }
    if len(argv) < 2 or argv[1] not in commands:
        fail(f"usage: serverctl.py {{{'|'.join(commands)}}} ARGS...")
    return commands[argv[1]](*argv[2:])


def fail(message, code=1):
    """Print one error line and exit."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def print_settings():
    """Print the server settings as sh assignments for `eval`."""
    try:
        values = settings.read()
    except settings.SettingError as error:
        fail(str(error))
    values["BIND"] = settings.bind_address(values)
    values["URL"] = settings.local_url(values)
    for name, value in values.items():
        print(f"{name}={shlex.quote(str(value))}")
    return 0


# Processes -------------------------------------------------------------------


def process_table():
    """Return {pid: (parent pid, process group, state)} for every process."""
    table = {}
    if os.path.isdir("/proc/self"):
        for name in os.listdir("/proc"):
            if name.isdigit():
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{name}/stat").read_text()
                    # The command name in parentheses may hold spaces: split after it.
                    fields = stat[stat.rindex(")") + 2 :].split()
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
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        return stat[stat.rindex(")") + 2]
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


def owner(pidfile):
    """Exit 0 printing the pid when pidfile names our running server,
    1 printing why when it is stale, 3 when there is no pidfile."""
    if not os.path.exists(pidfile):
        return 3
    pid = read_pid(pidfile)
    if pid is None:
        print("it holds no pid")
        return 1
    if not alive(pid):
        print(f"pid {pid} is not running")
        return 1
    if not is_ours(pid):
        print(f"pid {pid} is another program, left alone")
        return 1
    print(pid)
    return 0


# HTTP and ports ----------------------------------------------------------------


def ping(url, timeout=1.0):
    """Say whether url (http://HOST:PORT/PATH) answers 200."""
    address, path = url.removeprefix("http://").split("/", 1)
    host, _, port = address.rpartition(":")
    connection = http.client.HTTPConnection(
        host.strip("[]"), int(port), timeout=timeout
    )
    try:
        connection.request("GET", "/" + path)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def ping_command(url):
    """Exit 0 when url answers 200 within 2 seconds."""
    return 0 if ping(url, timeout=2.0) else 1


def port_in_use(host, port):
    """Say whether something listens on host:port.

    The test binds as gunicorn does (SO_REUSEADDR), so a port that only holds
    connections in TIME_WAIT after a stop counts as free.
    """
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            return True
    return False


# Start, stop, reload -------------------------------------------------------------


def launch(pidfile, logfile, accesslog, host, port, url, workers, timeout):
    """Start gunicorn detached; print its pid once url answers and every worker
    has loaded the app. On failure print why, stop it, remove its pidfile."""
    if port_in_use(host, port):
        fail(
            f"{host}:{port} is already in use by another program; "
            f"stop it or choose another port, e.g. PORT=5001 sh start.sh"
        )
    command = [sys.executable, "-m", "gunicorn", "--pid", pidfile]
    command += ["--error-logfile", logfile, "--access-logfile", accesslog]
    command += ["--capture-output"]
    log_start = os.path.getsize(logfile) if os.path.exists(logfile) else 0
    with open(logfile, "ab") as log:
        # Its own session: the server outlives this shell, and its process
        # group (id = its pid) holds just it and its workers.
        server = subprocess.Popen(
            command,
            cwd=PROJECT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + float(timeout)
    while True:
        if server.poll() is not None:
            why = f"gunicorn exited with code {server.returncode}"
            break
        if (
            ready_workers(logfile, log_start) >= int(workers)
            and read_pid(pidfile) == server.pid
            and ping(url)
        ):
            print(server.pid)
            return 0
        if time.monotonic() > deadline:
            why = f"{url} did not answer within {timeout} s"
            break
        time.sleep(POLL)
    stop_server(server.pid, 5)
    if read_pid(pidfile) == server.pid:
        os.remove(pidfile)
    print(
        f"error: start failed: {why}: {last_error(logfile, log_start)}", file=sys.stderr
    )
    print(f"       see {logfile}", file=sys.stderr)
    return 1


def ready_workers(logfile, offset):
    """Count the "worker ready" lines (gunicorn.conf.py) written after offset."""
    with open(logfile, "rb") as log:
        log.seek(offset)
        return log.read().count(b" gunicorn.ready: worker ready ")


def last_error(logfile, offset):
    """Return the line of the log (after offset) that best says what went wrong."""
    with open(logfile, "rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    for line in lines:  # the first exception line, e.g. "ConfigError: ..."
        head = line.split(":", 1)[0]
        if line and not line[0].isspace() and head.endswith(("Error", "Exception")):
            return line
    for line in lines:
        if " ERROR " in line:
            return line.split(": ", 1)[-1]
    return lines[-1] if lines else "nothing was logged"


def stop(pid, grace, host, port):
    """TERM our server pid, wait for it and its workers, then for the port."""
    if stop_server(int(pid), float(grace) + 5):
        print(f"it did not stop within {grace} s: killed", file=sys.stderr)
    while port_in_use(host, port):
        time.sleep(POLL)
    return 0


def stop_server(pid, wait):
    """TERM our server pid and wait for it and its workers; KILL them after
    wait seconds. Return True when they had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_gone(pid, wait):
        return False
    # start.sh made the server a group leader: its group holds only it and its
    # workers, and the id of a group that still has members is never reused.
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
    """Import the app as gunicorn's workers will; print why it fails."""
    os.chdir(PROJECT)
    os.environ["_APP_SECRET_KEY_WARNED"] = "1"  # a trial run, not a server
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            import wsgi  # noqa: F401
    except Exception as error:
        print(f"{type(error).__name__}: {error}")
        return 1
    return 0


def reload(pid, logfile, url, count, timeout):
    """HUP our server pid; wait until its new workers have loaded the app, its
    old ones are gone, and it answers."""
    pid = int(pid)
    old = workers(pid)
    log_start = os.path.getsize(logfile)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        if not alive(pid):
            why = last_error(logfile, log_start)
            fail(f"the server stopped during the reload: {why}")
        if (
            ready_workers(logfile, log_start) >= int(count)
            and not workers(pid) & old
            and ping(url)
        ):
            return 0
        time.sleep(POLL)
    fail(f"the reload did not finish within {timeout} s; see the log")


def reopen_logs():
    """Send USR1 to each server of this project that a pidfile names (logrotate's
    postrotate): gunicorn then reopens its log files. Others are left alone."""
    for pidfile in sorted(Path(PROJECT, "run").glob("app-*.pid")):
        pid = read_pid(pidfile)
        if pid and is_ours(pid):
            os.kill(pid, signal.SIGUSR1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
