"""Start, stop, reload and check the server: the work behind start.sh, stop.sh,
restart.sh and status.sh, which run `python ops/serverctl.py COMMAND`.

One server per port. start.sh launches gunicorn in a session of its own and
keeps a record of it, run/app-PORT.json: its folder, the master's pid and start
time, and the checked settings, which gunicorn.conf.py reads. A process is ours
only while its pid and start time both match a record of this folder; no name
or command line is trusted, and nothing else is ever signalled. New code comes
by a new master beside the old one (USR2); the old one is retired (TERM:
graceful) only once the new one serves. One script at a time acts on the folder
(run/lock), every wait has a deadline, and each outcome is one line. Processes
are read from /proc on Linux, from ps elsewhere (macOS, for development).
"""

import contextlib
import datetime
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
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))  # USR2 re-runs it
LINUX = os.path.isdir("/proc/self/task")
OWNER = ("folder", "pid", "started")  # what tells a master of ours


class Failure(Exception):
    """A step that failed; the message says why, and what to do."""


def main(argv):
    """Run the command named by argv[1:]; return the exit code."""
    commands = {"start": start, "stop": stop, "restart": restart, "status": status}
    commands["reopen-logs"] = reopen_logs
    name, options = (argv[1:2] or [""])[0], argv[2:]
    if name not in commands or options not in ([], ["--all"][: name == "stop"]):
        warn("usage: sh start.sh | sh stop.sh [--all] | sh restart.sh | sh status.sh")
        return 2
    os.environ.pop(settings.RECORD_VARIABLE, None)  # meant for gunicorn only
    # A TERM, or a closed terminal, stops a script as Ctrl-C does: undoing its step.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.default_int_handler)
    try:
        return commands[name](*options)
    except (Failure, settings.SettingError) as error:
        warn(f"error: {error}")
        return 1
    except KeyboardInterrupt as interrupt:
        warn(f"interrupted{': ' if str(interrupt) else ''}{interrupt}")
        return 130


def say(message):
    """Print one line now (the scripts' output is often a pipe)."""
    print(message, flush=True)


def warn(message):
    """Print one line to stderr."""
    print(message, file=sys.stderr, flush=True)


# The commands ----------------------------------------------------------------


def start():
    """start.sh: start the server in the background; return once it answers."""
    values = settings.read()
    with folder_lock(values):
        pid = running(values["PORT"])
        if not pid:
            return launch(values)
        undrain(values["PORT"])
        what = f"{APP} (pid {pid}) to answer at {address(values)}"
        url = settings.local_url(values)
        wait_until(lambda: ping(url), values["START_TIMEOUT"], what)
        say(f"{APP} is already running (pid {pid}) at {address(values)}")
    return 0


def stop(everything=None):
    """stop.sh: stop the server of the configured port (--all: every server of
    this folder) gracefully, and name those still running."""
    values = settings.read(strict=False)
    with folder_lock(values):
        ports = [port for port, _ in records()] if everything else [values["PORT"]]
        if not ports:
            say(f"{APP} is not running")
        drain([port for port in ports if running(port)], values["DRAIN_SECONDS"])
        for port in ports:
            pid = running(port)
            if not pid:
                say(f"{APP} is not running on port {port}{in_use(port)}")
                continue
            masters = [pid, *retiring(read_record(port))]
            if end(masters, values["GRACEFUL_TIMEOUT"] + 5):
                say(f"{APP} (pid {pid}) did not stop in time: killed")
            forget(port)
            say(f"stopped {APP} on port {port} (pid {pid})")
        name_the_others(ports)
    return 0


def restart():
    """restart.sh: new code and settings by a new master; start when not running."""
    values = settings.read()
    with folder_lock(values):
        pid = running(values["PORT"])
        if not pid:
            launch(values)
            name_the_others([values["PORT"]])
            return 0
        undrain(values["PORT"])
        record = read_record(values["PORT"])
        host = record["settings"]["HOST"]
        if values["HOST"] != host:  # a new master keeps the old one's sockets
            raise Failure(
                f"HOST is now {values['HOST']}, but {APP} (pid {pid}) listens on "
                f"{host}: a new address needs a stop and a start: "
                "sh stop.sh && sh start.sh"
            )
        if record.get("retiring"):  # an earlier restart.sh was cut short
            offset = end_of(settings.error_log(values["PORT"]))
            old = retiring(record)  # [] once it has gone
            signal_all(old, signal.SIGTERM)
            # Until the new master has taken the pidfile, it ignores a USR2.
            wait_promoted(pid, (old or [None])[0], values, offset)
        new = upgrade(pid, record, values)
        say(f"reloaded {APP} at {address(values)}: pid {new} serves, pid {pid} retired")
        name_the_others([values["PORT"]])
    return 0


def status():
    """status.sh: list every server of this folder. The exit code (LSB) is that
    of the configured port: 0 running, 1 dead but its record is left, 3 not
    running, 4 unknown (running but not answering, or an unreadable record)."""
    port = settings.read(strict=False)["PORT"]
    code = 3
    for other, record in records():
        if record is None:
            found, line = 4, f"status unknown: run/app-{other}.json cannot be read"
        elif not ours(record):
            found, line = 1, f"dead: {stale(record)} (sh start.sh clears its record)"
        else:
            since = record.get("since", time.time())
            up = datetime.timedelta(seconds=int(time.time() - since))
            url = address(record["settings"])
            found, line = 0, f"running (pid {record['pid']}, up {up}) at {url}"
            if not ping(settings.local_url(record["settings"]), timeout=2):
                found, line = 4, f"{line}, but it does not answer"
        say(f"{APP} on port {other}: {line}")
        code = found if other == port else code
    if code == 3:
        say(f"{APP} on port {port}: not running{in_use(port)}")
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
    """Start gunicorn detached; return 0 once every worker serves. On failure
    or Ctrl-C stop it, leave no pidfile or record behind, and raise."""
    port = values["PORT"]
    check_address(values)
    log = settings.error_log(port)
    with writing(log):
        log.parent.mkdir(exist_ok=True)
        output = log.open("ab")  # closed once gunicorn has it
    with writing(settings.drain_file(port)):  # left by a stop.sh that was killed
        settings.drain_file(port).unlink(missing_ok=True)
    pidfile = settings.pidfile(port)
    if pidfile.exists():  # no record of ours names it, and gunicorn would refuse it
        with writing(pidfile):
            say(f"removed stale pidfile run/{pidfile.name} ({read_pid(pidfile)})")
            pidfile.unlink()
    # gunicorn.conf.py reads the settings at once, before the pid is known.
    write_record(port, {"folder": str(settings.PROJECT), "settings": values})
    env = dict(os.environ, **{settings.RECORD_VARIABLE: str(settings.record(port))})
    # A session of its own: the server outlives the script and its terminal. Its
    # output goes to the log from the first instant: a bad setting fails before
    # gunicorn opens any log.
    with output:
        server = subprocess.Popen(
            [GUNICORN],
            cwd=settings.PROJECT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
        offset = output.tell()
    try:
        write_record(port, new_record(server.pid, values))

        workers = set()

        def ready():
            if worker := crashed(server.pid, workers):
                raise Failure(f"worker {worker} exited: {error_in(log, offset)}")
            return server.poll() is not None or answering(server.pid, values)

        wait_until(ready, values["START_TIMEOUT"], "the app to answer")
        if server.returncode is not None:
            why = error_in(log, offset)
            raise Failure(f"gunicorn exited with code {server.returncode}: {why}")
    except BaseException as error:
        shield()
        end([server.pid], 5)
        forget(port)
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt("stopped the server that was starting") from None
        raise Failure(f"start failed: {error} (see logs/{log.name})") from None
    say(f"started {APP} (pid {server.pid}) at {address(values)}, logs in logs/")
    return 0


def upgrade(old, record, values):
    """Start a new master beside old (USR2): it loads the code on disk with
    values. Once its workers answer, record it and retire old (TERM); return
    its pid. When it fails, old keeps serving with its own code and settings."""
    port = values["PORT"]
    pidfile, log = settings.pidfile(port), settings.error_log(port)
    leftovers = sorted(new_masters(old, pidfile))  # of a restart.sh that was killed
    if leftovers:
        say(f"stopping pid {leftovers[0]}, a new master left by a reload cut short")
        end(leftovers, values["GRACEFUL_TIMEOUT"] + 5)  # its requests finish
        # Until old has reaped it, old would ignore the USR2.
        wait_until(lambda: not any(map(proc, leftovers)), 5, f"pid {old} to reap it")
    with writing(pidfile):  # names no new master: gunicorn would refuse to write it
        Path(f"{pidfile}.2").unlink(missing_ok=True)
    write_record(port, dict(record, next=values))  # what the new master reads
    with writing(log):
        log.parent.mkdir(exist_ok=True)  # the new master logs there too
    offset, new, workers = end_of(log), None, set()

    def serving():
        """The new master's pid once its workers answer; raise when it fails."""
        nonlocal new
        new = new or min(new_masters(old, pidfile), default=None)
        if not started(old) and read_pid(pidfile) == old:
            # old was killed meanwhile: gunicorn's new master would take its
            # pidfile for that of another server (a zombie counts as live) and
            # stop at its promotion.
            pidfile.unlink(missing_ok=True)
        if new and not started(new):
            raise Failure(f"it exited: {error_in(log, offset)}")
        if new and (worker := crashed(new, workers)):
            raise Failure(f"its worker {worker} exited: {error_in(log, offset)}")
        return new if new and answering(new, values) else None

    signal_all([old], signal.SIGUSR2)
    try:
        wait_until(serving, values["START_TIMEOUT"], "the new master to answer")
    except BaseException as error:
        shield()
        with contextlib.suppress(Failure):  # a Ctrl-C may come before the fork
            wait_until(lambda: new or new_masters(old, pidfile), 0.5, "the fork")
        end(sorted({new} - {None} | new_masters(old, pidfile)), 5)
        write_record(port, record)  # without "next": a late fork refuses to start
        kept = f"{APP} (pid {old}) keeps running the old code"
        if not ours(record):
            kept = f"{APP} (pid {old}) has stopped meanwhile: sh start.sh"
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt(kept) from None
        raise Failure(f"the new code did not start: {error}; {kept}") from None
    # Until old is gone, the record names it too: a stop.sh then stops both.
    now = new_record(new, values)
    write_record(port, dict(now, retiring={k: record[k] for k in OWNER}))
    signal_all([old], signal.SIGTERM)
    try:
        wait_promoted(new, old, values, offset)
    except KeyboardInterrupt:
        why = f"pid {new} serves; pid {old} finishes its requests"
        raise KeyboardInterrupt(why) from None
    write_record(port, now)
    return new


def wait_promoted(new, old, values, offset):
    """Wait until old, sent TERM, has finished its requests and new has taken
    its pidfile (until then, new would ignore a further USR2). Raise when new
    stops, naming the line of the log after offset that says why."""
    port = values["PORT"]

    def promoted():
        if not started(new):
            why = error_in(settings.error_log(port), offset)
            raise Failure(f"the new master (pid {new}) stopped: {why}; sh start.sh")
        return not started(old) and read_pid(settings.pidfile(port)) == new

    what = f"the old master (pid {old}) to finish its requests"
    wait_until(promoted, values["GRACEFUL_TIMEOUT"] + 10, what)


def drain(ports, seconds):
    """Have /health/ready of the servers on ports answer 503 for seconds while
    they serve all else, so that load balancers stop sending before the TERM
    (which stops gunicorn taking connections). Ctrl-C stops nothing."""
    if not ports or not seconds:
        return
    try:
        for port in ports:
            with writing(settings.drain_file(port)):
                settings.drain_file(port).touch()
        say(f"draining {APP} for {seconds} s: /health/ready answers 503")
        time.sleep(seconds)
    except KeyboardInterrupt:
        for port in ports:
            settings.drain_file(port).unlink(missing_ok=True)
        raise KeyboardInterrupt(f"{APP} keeps serving") from None


def undrain(port):
    """Remove the drain file a stop.sh that was killed has left: the server
    it did not stop would answer 503 at /health/ready for good."""
    path = settings.drain_file(port)
    if path.exists():
        with writing(path):
            path.unlink()
        say(f"removed run/{path.name}, left by a stop.sh cut short: ready again")


def end(masters, wait):
    """TERM our masters and wait until they are gone, then do the same for
    their children still alive: a master stops its own workers, so those can
    only be new masters born of a USR2. KILL what is left after wait seconds.
    Return True when something had to be killed."""
    killed = False
    while masters:
        kids = {kid for master in masters for kid in children(master)}
        born = {pid: started(pid) for pid in [*masters, *kids]}
        signal_all(masters, signal.SIGTERM)
        try:
            wait_until(gone(masters), wait, "the server to stop")
        except Failure:
            signal_all(unchanged(born), signal.SIGKILL)
            wait_until(gone(masters), 10, "the killed server to go")
            killed = True
        masters = unchanged({kid: born[kid] for kid in kids})
    return killed


def check_address(values):
    """Raise a Failure naming the cause when HOST:PORT cannot be listened on.
    The probe binds as gunicorn does (SO_REUSEADDR: TIME_WAIT is no obstacle)."""
    host, port = values["HOST"].strip("[]"), values["PORT"]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as gunicorn's
    try:
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except socket.gaierror:
        raise Failure(f"HOST={host} is not a known name or address") from None
    except OSError as error:
        causes = {
            errno.EADDRINUSE: f"port {port} is in use by "
            f"{holder(port) or 'another program'}: stop it, "
            f"or choose another port, e.g. PORT={port % 65535 + 1} sh start.sh",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this host: use one "
            "it has (ip address), 127.0.0.1, or 0.0.0.0 for all",
            errno.EACCES: f"permission denied for port {port}: ports below 1024 "
            "need root; use PORT=5000 (and nginx in front for port 80)",
        }
        why = causes.get(error.errno, f"cannot listen on {host}:{port}: {error}")
        raise Failure(why) from None


def holder(port):
    """Name the program that listens on port, and the systemd service it runs
    in (systemctl then acts on it), where ss can tell; None if ss finds none."""
    ss = ["ss", "-Hltnp", f"sport = :{port}"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(ss, capture_output=True, text=True, timeout=5).stdout
        found = {
            int(pid): name for name, pid in re.findall(r'"([^"]+)",pid=(\d+)', out)
        }
        if not found:  # ss names no process of another user (unless root)
            return "another program" if out.strip() else None
        if len(found) > 1:
            found.pop(1, None)  # systemd, holding a socket unit's socket too
        # Name the parent of them all (a master, rather than one of its workers).
        for pid, name in sorted(found.items()):
            if parent(pid) not in found:
                unit = "a socket unit" if pid == 1 else service(pid)
                hint = f", {unit}: use systemctl" if unit else ""
                return f"{name} (pid {pid}{hint})"
    return None


def service(pid):
    """Return the systemd service of this app (deploy/myapp@.service) that
    pid runs in, or None."""
    with contextlib.suppress(OSError):
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        unit = re.search(
            r"^(?:0::|\d+:name=systemd:)\S*/(\S+\.service)$", cgroups, re.M
        )
        if unit and unit[1].startswith((f"{APP}@", f"{APP}.")):
            return unit[1]
    return None


def in_use(port):
    """Return "; port P is in use by ..." when another program listens on
    port (systemd's instance of the app, say), else ""."""
    user = holder(port)
    return f"; port {port} is in use by {user}" if user else ""


def name_the_others(ports):
    """Name every other running server of this folder, and how to stop it."""
    for port, record in records():
        if port not in ports and ours(record):
            say(
                f"{APP} also runs on port {port} (pid {record['pid']}): stop it with "
                f"PORT={port} sh stop.sh, or every one with sh stop.sh --all"
            )


def end_of(log):
    """Return the size of log: where the lines of what comes next begin."""
    with contextlib.suppress(OSError):
        return log.stat().st_size
    return 0


def error_in(log, offset):
    """Return the line of the log, after offset, that best says what went
    wrong: the first exception line ("ConfigError: ..."), else the last line."""
    try:
        with open(log, "rb") as lines:
            lines.seek(offset)
            text = lines.read().decode(errors="replace").strip().splitlines()
    except OSError:
        text = []
    errors = [line for line in text if re.match(r"\w*(Error|Exception): ", line)]
    return (errors or text or ["nothing was logged"])[0 if errors else -1]


# The records, the lock and the files -------------------------------------------


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
    """Return the record of port: {} if there is none, None if unreadable."""
    try:
        record = json.loads(settings.record(port).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(port, record):
    """Write the record of port atomically: a reader sees the old or the new."""
    path = settings.record(port)
    draft = path.with_suffix(".draft")
    try:
        with writing(path):
            draft.write_text(json.dumps(record, indent=1) + "\n")
            draft.replace(path)
    finally:
        with contextlib.suppress(OSError):
            draft.unlink(missing_ok=True)


def records():
    """Return (port, record) for every record in run/, by port."""
    names = [path.stem[4:] for path in settings.RUN.glob("app-*.json")]
    return [(int(port), read_record(port)) for port in sorted(names) if port.isdigit()]


def retiring(record):
    """Return [pid] of the old master a reload was retiring, while it runs."""
    old = (record or {}).get("retiring")
    return [old["pid"]] if old and ours(old) else []


def ours(record):
    """Say whether record names a live master launched for this folder (a
    copy of the folder copies its records): its pid, with its start time."""
    return not stale(record)


def stale(record):
    """Say why record names no live master of this folder, or "" if it does."""
    if not record:
        return "it cannot be read"
    if record.get("folder") != str(settings.PROJECT):
        return f"it was written in {record.get('folder')} (a copy of the folder?)"
    pid = record.get("pid")
    when = started(pid)
    if when is None:
        return f"pid {pid} is not running"
    return "" if when == record.get("started") else f"pid {pid} is another program"


def running(port):
    """Return the pid of our master on port, or None. A record that names no
    master of ours (a dead pid, one reused by another program, a copied
    record) is reported and removed, never acted on."""
    record = read_record(port)
    if record == {} or ours(record):
        return record.get("pid")
    pid = record.get("pid") if record else read_pid(settings.pidfile(port))
    if record is None and started(pid):
        raise Failure(
            f"run/app-{port}.json cannot be read, and pid {pid} of run/app-{port}.pid "
            f"runs: if it is {APP}, stop it (kill -TERM {pid}), then remove both files"
        )
    with writing(settings.record(port)):
        forget(port)
    say(f"removed the stale record of port {port}: {stale(record)}")
    if isinstance(pid, int) and pid > 0 and not started(pid):
        # A killed master leaves its workers serving for a moment.
        with contextlib.suppress(Failure):
            wait_until(lambda: not group_exists(pid), 5, "its workers to exit")
    return None


def forget(port):
    """Remove the record of port, and gunicorn's pidfile (left when killed)."""
    settings.record(port).unlink(missing_ok=True)
    settings.drain_file(port).unlink(missing_ok=True)
    with contextlib.suppress(IsADirectoryError):
        settings.pidfile(port).unlink(missing_ok=True)


@contextlib.contextmanager
def folder_lock(values):
    """Let one script at a time act on this folder's servers. A script waits
    for another (a start waiting for the app, say) up to its own timeouts."""
    path = settings.RUN / "lock"
    with writing(path):
        path.parent.mkdir(exist_ok=True)
        lock = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def taken():
        with contextlib.suppress(BlockingIOError):
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        return False

    try:
        wait = values["START_TIMEOUT"] + values["GRACEFUL_TIMEOUT"] + 10
        wait_until(taken, wait, f"another script acting on {APP} to finish")
        yield
    finally:
        os.close(lock)


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
        name = (
            path.relative_to(settings.PROJECT)
            if path.is_relative_to(settings.PROJECT)
            else path
        )
        raise Failure(f"cannot write {name}: {why}") from None


def read_pid(pidfile):
    """Return the pid in pidfile, or None when it is missing or not a number."""
    with contextlib.suppress(OSError, ValueError):
        return int(Path(pidfile).read_text())
    return None


# Processes, waits and the network --------------------------------------------------


def proc(pid):
    """Return the state letter, parent pid and start time of pid, or None
    when there is no such process."""
    if not isinstance(pid, int) or not 0 < pid < 1 << 22:  # Linux's largest
        return None
    if LINUX:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # The command name in parentheses may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        return fields[0], int(fields[1]), fields[19]
    ps = ["ps", "-o", "stat=,ppid=,lstart=", "-p", str(pid)]
    out = subprocess.run(ps, capture_output=True, text=True).stdout.split(None, 2)
    return (out[0][:1], int(out[1]), out[2].strip()) if len(out) == 3 else None


def started(pid):
    """Return when pid started (a string to compare), or None when it is gone
    or has finished (a zombie)."""
    found = proc(pid)
    return found[2] if found and found[0] != "Z" else None


def parent(pid):
    """Return the parent pid of pid, or None."""
    found = proc(pid)
    return found[1] if found else None


def children(pid):
    """Return the pids of pid's live children."""
    if LINUX:
        with contextlib.suppress(OSError):
            path = Path(f"/proc/{pid}/task/{pid}/children")
            return {int(kid) for kid in path.read_text().split() if started(int(kid))}
        return set()
    ps = ["ps", "-A", "-o", "pid=,ppid="]
    out = subprocess.run(ps, capture_output=True, text=True).stdout.split()
    pairs = zip(out[::2], out[1::2], strict=True)
    return {
        int(kid) for kid, parent in pairs if parent == str(pid) and started(int(kid))
    }


def new_masters(old, pidfile):
    """Return the pids of the new masters old forked on a USR2: gunicorn gives
    each one old's pid in GUNICORN_PID (a worker old respawns has none). One
    whose old master died has left it for init, but has written <pidfile>.2."""
    mark = f"GUNICORN_PID={old}".encode()
    found = set()
    for kid in children(old) | {read_pid(f"{pidfile}.2")} - {None}:
        with contextlib.suppress(OSError):
            if LINUX:
                words = Path(f"/proc/{kid}/environ").read_bytes().split(b"\0")
            else:
                ps = ["ps", "-E", "-ww", "-o", "command=", "-p", str(kid)]
                words = subprocess.run(ps, capture_output=True).stdout.split()
            if mark in words:
                found.add(kid)
    return found


def group_exists(pgid):
    """Say whether process group pgid has members: a dead master's workers stay
    in its group, whose id no new process can take while they live."""
    try:
        os.killpg(pgid, 0)  # sends nothing
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        pass
    return True


def unchanged(born):
    """Return the pids of born ({pid: start time}) that still run since then:
    a pid that has ended may have been given to another program since."""
    return [pid for pid, when in born.items() if when and started(pid) == when]


def gone(pids):
    """Return a check that says whether every one of pids has finished."""
    return lambda: not any(map(started, pids))


def signal_all(pids, number):
    """Send signal number to each of pids that still exists."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)


def crashed(master, workers):
    """Return a worker of master gone since the last call, or None; workers is
    the set of those seen so far. A master replaces a worker that crashed, so
    new code that crashes on each request would otherwise go unnoticed."""
    alive = children(master)
    lost = workers - alive
    workers |= alive
    return min(lost, default=None)


def answering(master, values):
    """Say whether all the workers of master are up and one of them answers
    /health/ping with 200; raise a Failure when it answers something else."""
    code, by = probe(settings.local_url(values))
    if by == master and code != 200:
        raise Failure(f"the app answers {code} at /health/ping")
    if code == 200 and by is None:  # gunicorn.conf.py's hook was removed
        raise Failure(
            f"/health/ping answers without the {settings.MASTER_HEADER} "
            "header that post_worker_init in gunicorn.conf.py adds: keep it"
        )
    return by == master and len(children(master)) >= values["WEB_CONCURRENCY"]


def shield():
    """Ignore further interrupts: the clean-up under way must finish."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)


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
    return probe(url, timeout)[0] == 200


def probe(url, timeout=1.0):
    """Ask url; return its status code and the pid of the master whose worker
    answered (gunicorn.conf.py names it on /health/ping), None when absent."""
    host_port, path = url.removeprefix("http://").split("/", 1)
    host, _, port = host_port.rpartition(":")
    request = f"GET /{path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n".encode()
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout) as conn:
            conn.sendall(request)
            head = conn.makefile("rb").read(4096)  # HTTP/1.0: it closes after
    except OSError:
        return None, None
    code = re.match(rb"HTTP/\S+ (\d{3})", head)
    master = re.search(rf"(?im)^{settings.MASTER_HEADER}: *(\d+)".encode(), head)
    return (int(code[1]) if code else None), (int(master[1]) if master else None)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
