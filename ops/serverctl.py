"""Start, stop, reload and check the server: the work behind start.sh, stop.sh,
restart.sh and status.sh, which run `python ops/serverctl.py COMMAND`.

One server per port. start.sh launches gunicorn in a session of its own and
keeps a record, run/app-PORT.json: the master's pid, its start time and the
checked settings, which gunicorn.conf.py reads. A process is ours only while its
pid and start time both match the record: no name, folder or command line is
trusted, and nothing else is ever signalled. New code comes by a new master
beside the old one (USR2); the old one is retired (TERM, graceful) only once the
new one serves. One script at a time acts on the folder (run/lock), every wait
has a deadline, and each outcome is one line. Processes are read from /proc on
Linux, from ps elsewhere (macOS, for development).
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops import settings  # noqa: E402 (needs the project folder on sys.path)

APP = settings.PROJECT.name
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
LINUX = os.path.isdir("/proc/self/task")


class Failure(Exception):
    """A step that failed; the message says why, and what to do."""


def main(argv):
    """Run the command named by argv[1:]; return the exit code."""
    commands = {
        "start": start,
        "stop": stop,
        "restart": restart,
        "status": status,
        "reopen-logs": reopen_logs,
    }
    name, options = (argv[1:2] or [""])[0], argv[2:]
    if name not in commands or options not in ([], ["--all"][: name == "stop"]):
        print(f"usage: serverctl.py {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    os.environ.pop(settings.RECORD_VARIABLE, None)  # the record is gunicorn's only
    # A closed terminal or a TERM stops a script as Ctrl-C does: undoing its step.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.default_int_handler)
    try:
        return commands[name](*options)
    except (Failure, settings.SettingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        why = f": {interrupt}" if str(interrupt) else ""
        print(f"interrupted{why}", file=sys.stderr)
        return 130


def say(message):
    """Print one line now (the scripts' output is often a pipe)."""
    print(message, flush=True)


# The commands ----------------------------------------------------------------


def start():
    """start.sh: start the server in the background; return once it answers."""
    values = settings.read()
    with folder_lock(values):
        pid = running(values["PORT"])
        if pid:
            say(f"{APP} is already running (pid {pid}) at {address(values)}")
            return 0
        launch(values)
    return 0


def stop(everything=None):
    """stop.sh: stop the server of the configured port (--all: every server of
    this folder) gracefully; name those still running."""
    values = settings.read(strict=False)
    with folder_lock(values):
        ports = [port for port, _ in records()] if everything else [values["PORT"]]
        for port in ports:
            pid = running(port)
            if not pid:
                say(f"{APP} is not running on port {port}")
                continue
            if end([pid], values["GRACEFUL_TIMEOUT"] + 5):
                say(f"{APP} (pid {pid}) did not stop in time: killed")
            forget(port)
            say(f"stopped {APP} on port {port} (pid {pid})")
        name_the_others(ports)
    return 0


def restart():
    """restart.sh: new code and settings by a new master; start when not running."""
    values = settings.read()
    port = values["PORT"]
    with folder_lock(values):
        pid = running(port)
        if not pid:
            launch(values)
            name_the_others([port])
            return 0
        record = read_record(port)
        if values["HOST"] != record["settings"]["HOST"]:
            raise Failure(
                f"HOST is now {values['HOST']}, but {APP} (pid {pid}) listens on "
                f"{record['settings']['HOST']}: a new address needs a stop and a "
                f"start: sh stop.sh && sh start.sh"
            )
        check_code(pid, values)
        new = upgrade(pid, record, values)
    say(f"reloaded {APP} at {address(values)}: pid {new} serves, pid {pid} retired")
    return 0


def status():
    """status.sh: list every server of this folder. The exit code (LSB) is that
    of the configured port: 0 running, 1 dead with its record left, 3 not
    running, 4 unknown (running but not answering, or unreadable)."""
    port = settings.read(strict=False)["PORT"]
    code = 3
    for other, record in records():
        found, line = describe(other, record)
        say(line)
        code = found if other == port else code
    if code == 3:
        say(f"{APP} is not running on port {port}")
    return code


def reopen_logs():
    """logrotate's postrotate: USR1 to each running server of this folder
    (gunicorn then reopens its log files), and to no other process."""
    for _, record in records():
        if ours(record):
            os.kill(record["pid"], signal.SIGUSR1)
    return 0


# Steps -------------------------------------------------------------------------


def launch(values):
    """Start gunicorn detached; return once every worker serves. On failure or
    Ctrl-C stop it, leave no pidfile or record behind, and raise."""
    port = values["PORT"]
    check_address(values)
    log_path = settings.error_log(port)
    with writing(log_path):
        log_path.parent.mkdir(exist_ok=True)
        log = log_path.open("ab")  # closed once gunicorn has it
    pidfile = settings.pidfile(port)
    if pidfile.exists():  # not ours (no record matches), and it would stop gunicorn
        say(f"removed stale pidfile run/{pidfile.name} ({pidfile.read_text().strip()})")
        pidfile.unlink()
    write_record(port, {"settings": values})
    env = dict(os.environ, **{settings.RECORD_VARIABLE: str(settings.record(port))})
    # A session of its own: the server outlives the script and its terminal, and
    # its process group holds just it and its workers. Its output goes to the
    # log from the first instant: a bad setting fails before gunicorn opens any.
    with log:
        server = subprocess.Popen(
            [GUNICORN],
            cwd=settings.PROJECT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        offset = log.tell()
    try:
        write_record(port, new_record(server.pid, values))
        wait_until(
            lambda: server.poll() is not None or serves(server.pid, pidfile, values),
            values["START_TIMEOUT"],
            "the app to answer",
        )
        if server.returncode is not None:
            why = last_error(log_path, offset)
            raise Failure(f"gunicorn exited with code {server.returncode}: {why}")
    except BaseException as error:
        end([server.pid], 5)
        forget(port)
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt("stopped the server that was starting") from None
        raise Failure(f"start failed: {error} (see logs/{log_path.name})") from None
    say(f"started {APP} (pid {server.pid}) at {address(values)}, logs in logs/")


def upgrade(old, record, values):
    """Start a new master beside old (USR2) with the code on disk and values;
    once it serves, record it and retire old (TERM). Return the new pid. When
    the new one fails, old keeps serving with its own code and settings."""
    port = values["PORT"]
    pidfile = settings.pidfile(port)
    pidfile2 = Path(f"{pidfile}.2")
    leftover = read_pid(pidfile2)
    if leftover in children(old):
        raise Failure(
            f"a new master of an earlier reload (pid {leftover}) still runs beside "
            f"pid {old}: stop both with sh stop.sh, then sh start.sh"
        )
    write_record(port, dict(record, settings=values))  # what the new master reads
    before = children(old)
    born = set()

    def new_master():
        """The new master's pid once it serves; raise if it died."""
        born.update(children(old) - before)
        new = read_pid(pidfile2)
        if new in born and serves(new, pidfile2, values):
            return new
        if born and not any(map(started, born)):
            raise Failure(f"it exited: {last_error(settings.error_log(port), offset)}")
        return None

    offset = settings.error_log(port).stat().st_size
    os.kill(old, signal.SIGUSR2)
    try:
        new = wait_until(new_master, values["START_TIMEOUT"], "the new master")
        write_record(port, new_record(new, values))
    except BaseException as error:
        end(born, 5)  # ours: children of our master, born of the USR2
        write_record(port, record)
        kept = f"{APP} (pid {old}) keeps running the old code"
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt(kept) from None
        raise Failure(f"the new code did not start: {error}; {kept}") from None
    os.kill(old, signal.SIGTERM)
    wait_until(
        lambda: not started(old) and read_pid(pidfile) == new,
        values["GRACEFUL_TIMEOUT"] + 10,
        f"the old master (pid {old}) to finish its requests",
    )
    return new


def check_code(pid, values):
    """Load the code on disk as a new master would (gunicorn --check-config)."""
    check = subprocess.run(
        [GUNICORN, "--check-config"],
        cwd=settings.PROJECT,
        capture_output=True,
        text=True,
        timeout=values["START_TIMEOUT"],
    )
    if check.returncode != 0:
        why = first_error(check.stderr.splitlines())
        kept = f"{APP} (pid {pid}) keeps running the old code"
        raise Failure(f"the app does not load: {why}; {kept}")


def end(masters, wait):
    """TERM our masters and wait until they are gone, then do the same for
    their children still alive: a master stops its own workers, so those can
    only be new masters born of a USR2. KILL what is left after wait seconds.
    Return True when something had to be killed."""
    killed = False
    while masters:
        kids = {kid for master in masters for kid in children(master)}
        for pid in masters:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            wait_until(gone(masters), wait, "the server to stop")
        except Failure:
            for pid in [*masters, *kids]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            wait_until(gone(masters), 10, "the killed server to go")
            killed = True
        masters = [kid for kid in kids if started(kid)]
    return killed


def check_address(values):
    """Raise a Failure naming the cause when HOST:PORT cannot be listened on.
    The probe binds as gunicorn does (SO_REUSEADDR: TIME_WAIT is no obstacle)."""
    host, port = values["HOST"].strip("[]"), values["PORT"]
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except socket.gaierror:
        raise Failure(f"HOST={host} is not a known name or address") from None
    except OSError as error:
        causes = {
            errno.EADDRINUSE: f"port {port} is in use by {holder(port)}: stop it, or "
            f"choose another port, e.g. PORT={port % 65535 + 1} sh start.sh",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this host: use one "
            "it has (ip address), 127.0.0.1, or 0.0.0.0 for all",
            errno.EACCES: f"permission denied for port {port}: ports below 1024 "
            "need root; use PORT=5000 (and nginx in front for port 80)",
        }
        why = causes.get(error.errno, f"cannot listen on {host}:{port}: {error}")
        raise Failure(why) from None


def holder(port):
    """Name the program that listens on port, where ss can tell."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        ss = ["ss", "-Hltnp", f"sport = :{port}"]
        out = subprocess.run(ss, capture_output=True, text=True, timeout=5).stdout
        if found := re.search(r'"([^"]+)",pid=(\d+)', out):
            return f"{found[1]} (pid {found[2]})"
    return "another program"


def name_the_others(ports):
    """Name every other running server of this folder and how to stop it."""
    for port, record in records():
        if port not in ports and ours(record):
            say(
                f"{APP} also runs on port {port} (pid {record['pid']}): stop it with "
                f"PORT={port} sh stop.sh, or every one with sh stop.sh --all"
            )


def describe(port, record):
    """Return (LSB code, one line) for the server recorded for port."""
    if record is None:
        return 4, f"{APP} on port {port}: status unknown, its record cannot be read"
    if not ours(record):
        return 1, (
            f"{APP} is dead on port {port} (pid {record.get('pid')}), its record is "
            f"left: sh start.sh starts it anew"
        )
    up = f"pid {record['pid']}, up {duration(time.time() - record['since'])}"
    url = address(record["settings"])
    if not ping(settings.local_url(record["settings"]), timeout=2):
        return 4, f"{APP} is running on port {port} ({up}) but does not answer at {url}"
    return 0, f"{APP} is running on port {port} ({up}) at {url}"


def duration(seconds):
    """Say seconds as "5 s", "3 min", "2 h 5 min" or "3 d 4 h"."""
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days:.0f} d {hours % 24:.0f} h"
    if hours:
        return f"{hours:.0f} h {minutes % 60:.0f} min"
    return f"{minutes:.0f} min" if minutes else f"{seconds:.0f} s"


def last_error(path, offset):
    """Return the line of the log, after offset, that best says what went wrong."""
    with open(path, "rb") as log:
        log.seek(offset)
        return first_error(log.read().decode(errors="replace").splitlines())


def first_error(lines):
    """Return the first exception line (e.g. "ConfigError: ..."), else the first
    ERROR line, else the last line."""
    for line in lines:
        head = line.split(":", 1)[0]
        if line and not line[0].isspace() and head.endswith(("Error", "Exception")):
            return line
    for line in lines:
        if " ERROR " in line:
            return line.split(": ", 1)[-1]
    return lines[-1] if lines else "nothing was logged"


# The record, the lock and the files -------------------------------------------


def new_record(pid, values):
    """The record of master pid, just launched with values from this folder."""
    return {
        "folder": str(settings.PROJECT),
        "pid": pid,
        "started": started(pid),
        "since": time.time(),
        "settings": values,
    }


def read_record(port):
    """Return the record of port: {} if there is none, None if it cannot be read."""
    try:
        return json.loads(settings.record(port).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None


def write_record(port, record):
    """Write the record of port atomically: a reader sees the old or the new."""
    path = settings.record(port)
    draft = path.with_suffix(".draft")
    try:
        with writing(path):
            draft.write_text(json.dumps(record, indent=1) + "\n")
            draft.replace(path)
    finally:
        draft.unlink(missing_ok=True)


def records():
    """Return (port, record) for every record in run/, by port."""
    ports = sorted(
        int(p.stem[4:]) for p in settings.RUN.glob("app-*.json") if p.stem[4:].isdigit()
    )
    return [(port, read_record(port)) for port in ports]


def ours(record):
    """Say whether record names a live master launched for this folder (a copy
    of the folder copies its records): its pid, with its start time."""
    if not record or record.get("folder") != str(settings.PROJECT):
        return False
    when = started(record.get("pid"))
    return when is not None and when == record.get("started")


def running(port):
    """Return the pid of our master on port, or None. A record that names no
    master of ours (a dead pid, or one now used by another program) is
    reported and removed, never acted on."""
    record = read_record(port)
    if record is None:
        raise Failure(f"cannot read run/app-{port}.json: check its owner and mode")
    if not record or ours(record):
        return record.get("pid")
    say(f"removed the stale record of port {port}: pid {record.get('pid')} is not ours")
    forget(port)
    return None


def forget(port):
    """Remove the record of port and gunicorn's pidfile (left when killed)."""
    settings.record(port).unlink(missing_ok=True)
    settings.pidfile(port).unlink(missing_ok=True)


@contextlib.contextmanager
def folder_lock(values):
    """Let one script at a time act on this folder's servers. A script waits
    for another (a start waiting for the app, say) up to its own timeouts."""
    path = settings.RUN / "lock"
    with writing(path):
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:

        def taken():
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            return False

        wait = values["START_TIMEOUT"] + values["GRACEFUL_TIMEOUT"] + 10
        holder = os.read(fd, 20).decode(errors="replace").strip() or "?"
        wait_until(taken, wait, f"another script (pid {holder}) to finish with {APP}")
        with writing(path):  # who holds the lock, for the message above
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def writing(path):
    """Turn a failure to write path into one line naming the cause."""
    try:
        yield
    except OSError as error:
        causes = {
            errno.ENOSPC: "the disk is full",
            errno.EACCES: "permission denied (run as the folder's owner, or chown it)",
            errno.EROFS: "the file system is read-only",
        }
        why = causes.get(error.errno, error.strerror)
        name = path.relative_to(settings.PROJECT)
        raise Failure(f"cannot write {name}: {why}") from None


def read_pid(pidfile):
    """Return the pid in pidfile, or None when it is missing or not a number."""
    try:
        text = Path(pidfile).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# Processes and the network -------------------------------------------------------


def started(pid):
    """Return when pid started (a string to compare), or None when it is gone
    or has finished (a zombie)."""
    if not isinstance(pid, int):
        return None
    if LINUX:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # The command name in parentheses may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        return None if fields[0] == "Z" else fields[19]
    ps = ["ps", "-o", "stat=,lstart=", "-p", str(pid)]
    out = subprocess.run(ps, capture_output=True, text=True).stdout.split(None, 1)
    return None if not out or out[0].startswith("Z") else out[1].strip()


def gone(pids):
    """Return a check that says whether every one of pids has finished."""
    return lambda: not any(map(started, pids))


def children(pid):
    """Return the pids of pid's live children."""
    if LINUX:
        try:
            found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return set()
    else:
        ps = ["ps", "-A", "-o", "pid=,ppid="]
        out = subprocess.run(ps, capture_output=True, text=True).stdout.split()
        pairs = zip(out[::2], out[1::2], strict=True)
        found = [child for child, parent in pairs if parent == str(pid)]
    return {int(child) for child in found if started(int(child))}


def serves(pid, pidfile, values):
    """Say whether master pid has written pidfile, has all its workers (each a
    copy of the loaded app) and answers."""
    return (
        read_pid(pidfile) == pid
        and len(children(pid)) >= values["WEB_CONCURRENCY"]
        and ping(settings.local_url(values))
    )


def wait_until(check, timeout, what):
    """Call check until it returns a true value, and return that; raise a
    Failure naming what was awaited after timeout seconds. Checks come every
    10 ms in the first second, when an answer is likely soon, then every 0.1 s."""
    began = time.monotonic()
    while not (result := check()):
        waited = time.monotonic() - began
        if waited > timeout:
            raise Failure(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.01 if waited < 1 else 0.1)
    return result


def address(values):
    """Return the URL the server listens at."""
    return f"http://{settings.bind_address(values)}"


def ping(url, timeout=1.0):
    """Say whether url (http://HOST:PORT/PATH) answers 200."""
    host_port, path = url.removeprefix("http://").split("/", 1)
    host, _, port = host_port.rpartition(":")
    request = f"GET /{path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n".encode()
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout) as conn:
            conn.sendall(request)
            status_line = conn.makefile("rb").readline()
    except OSError:
        return False
    return status_line.split(b" ")[1:2] == [b"200"]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
