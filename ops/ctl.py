"""Start, stop, reload and check the server: the work behind start.sh, stop.sh,
restart.sh and status.sh, systemd's ExecReload and ExecStop, and logrotate's
postrotate: `python ops/ctl.py start|stop [--all]|restart|reload|status|reopen`.

Shaped like PostgreSQL's pg_ctl: the server owns its state. gunicorn writes
run/app-PORT.pid, and during a reload run/app-PORT.pid.2 for the new master,
which it promotes when the old one exits; this program keeps nothing else but a
lock. A pid is signalled only when it is a gunicorn master this folder launched
with that pidfile (not a worker, not another program), run by the user acting,
and started before the pidfile was written; and run/ must be that user's
alone. The settings come from gunicorn.conf.py, their one reader. New code
comes by a new master beside the old one (USR2); the old one is retired
(TERM: graceful) only once a worker of the new one answers. Every wait has a
deadline, and each outcome is one line. Linux only: it reads /proc.
"""

import collections
import contextlib
import datetime
import errno
import fcntl
import os
import pwd
import re
import runpy
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
APP = PROJECT.name
# Under systemd, the unit's runtime folder: the project is read-only there.
# Under systemd, the unit's runtime folder: the project is read-only there. Never
# for root, whom the unit does not run, and who would act where it points.
RUNTIME = os.environ.get("RUNTIME_DIRECTORY", "")
RUN = Path(RUNTIME if os.path.isabs(RUNTIME) and os.geteuid() else PROJECT / "run")
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))  # a USR2 runs it again
CONF: dict[str, Any] = {}  # what running gunicorn.conf.py computed


# What proc() tells of a process: its parent, start (clock ticks after boot),
# age in seconds, folder and command line.
Process = collections.namedtuple("Process", "ppid start age cwd argv")
# What a change of folder, HOST or the reload under way needs.
RESTART = "sh stop.sh && sh start.sh"


class Failure(Exception):
    """A step that failed; the message says why, and what to do."""


def main(argv):
    """Run the command named by argv[1:]; return the exit code."""
    commands = {"start": start, "stop": stop, "restart": restart, "status": status}
    commands |= {"reload": lambda: restart(start=False), "reopen": reopen}
    name, options = (argv[1:2] or [""])[0], argv[2:]
    if name not in commands or options not in ([], ["--all"][: name == "stop"]):
        warn("usage: sh start.sh | sh stop.sh [--all] | sh restart.sh | sh status.sh")
        return 2
    # A TERM, or a closed terminal, stops a script as Ctrl-C does: undoing its step.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.default_int_handler)
    try:
        try:
            conf = str(PROJECT / "gunicorn.conf.py")
            CONF.update(runpy.run_path(conf, run_name="ctl"))
        except Exception as error:
            raise Failure(f"gunicorn.conf.py fails: {error!r}") from None
        scripts = ("start", "stop", "restart", "status")
        fix = (
            f"sh {name}.sh" if name in scripts else f"{sys.executable} {argv[0]} {name}"
        )
        if name in ("start", "restart"):  # when it cannot, launch() says why
            with contextlib.suppress(OSError):
                RUN.mkdir(0o700)
        private(RUN, fix, create=False)
        return commands[name](*options)
    except (Failure, OSError) as error:  # OSError: a file or process gone meanwhile
        warn(f"error: {error}")
        return 4 if name == "status" else 1  # status: LSB's "unknown"
    except KeyboardInterrupt as interrupt:
        warn(f"interrupted{': ' if str(interrupt) else ''}{interrupt}")
        return 130


def say(message):
    """Print one line now (the scripts' output is often a pipe)."""
    print(message, flush=True)


def warn(message):
    """Print one line to stderr."""
    print(message, file=sys.stderr, flush=True)


def settings(strict, port=True):
    """Return the server settings. A problem with them stops a start or a
    reload; elsewhere it is a warning (a stop works whatever .env holds), but
    for a bad PORT where one is needed: its default names another server."""
    for problem in CONF["problems"]:
        if strict or port and problem.startswith("PORT="):
            raise Failure(problem)
        warn(f"warning: {problem}; using the default meanwhile")
    return CONF["values"]


# The commands ---------------------------------------------------------------


def start():
    """start.sh: start the server in the background; return once it answers."""
    values = settings(strict=True)
    with lock(values):
        drain_file(values["PORT"]).unlink(missing_ok=True)  # a killed stop.sh's
        if not (pid := server(values["PORT"])):
            return launch(values)
        answer = f"pid {pid} to answer"
        wait_until(lambda: probe(values)[1] == pid, values["START_TIMEOUT"], answer)
        say(f"{APP} is already running (pid {pid}) at {url(values)}")
    return 0


def stop(every=None):
    """stop.sh: stop the server of PORT (--all: every server of this folder),
    letting requests in flight finish; name the others still running."""
    values = settings(strict=False, port=not every)
    with lock(values):
        masters = {port: server(port) for port in ports(every, values)}
        if not any(masters.values()):
            say(f"{APP} is not running{in_use(values['PORT'], every)}")
        drain([port for port, pid in masters.items() if pid], values)
        for port, pid in masters.items():
            if pid:
                end([pid, *new_masters(pid)], graceful(pid, values) + 10)
                for path in pidfile(port), pidfile(port, ".2"), drain_file(port):
                    path.unlink(missing_ok=True)  # gunicorn leaves one when killed
                say(f"stopped {APP} on port {port} (pid {pid})")
        name_the_others(masters)
    return 0


def restart(start=True):
    """restart.sh: new code and settings by a new master; start when not
    running. systemctl reload (the unit's ExecReload) never starts."""
    values = settings(strict=True)
    with lock(values):
        drain_file(values["PORT"]).unlink(missing_ok=True)  # a killed stop.sh's
        if pid := server(values["PORT"]):
            upgrade(pid, values)
        elif start:
            launch(values)
        else:
            raise Failure(f"{APP} is not running on port {values['PORT']}")
        name_the_others([values["PORT"]])
    return 0


def status():
    """status.sh: list every server of this folder. The exit code (LSB) is that
    of PORT: 0 running, 1 dead with its pidfile left, 3 not running, 4 unknown
    (running but not answering)."""
    values = settings(strict=False, port=True)
    code = 3
    for port in ports(True, values):
        each = dict(values, PORT=port)
        if not (pid := server(port, tidy=False)):
            found, line = 1, f"dead: run/app-{port}.pid is left (sh start.sh clears it)"
        else:
            up = datetime.timedelta(seconds=int(proc(pid).age))
            answer, _, listening = probe(each, timeout=2)
            where = url(dict(each, HOST=listening or each["HOST"]))  # not .env's
            found, line = 0, f"running (pid {pid}, up {up}) at {where}"
            if answer != 200:
                found, line = 4, f"{line}, but it does not answer"
            if kid := next(iter(new_masters(pid)), None):
                line += f", with pid {kid} of a reload cut short (sh stop.sh ends both)"
            note_shadowed(pid)
        say(f"{APP} on port {port}: {line}")
        code = found if port == values["PORT"] else code
    if code == 3:
        say(f"{APP} is not running{in_use(values['PORT'])}")
    return code


def reopen():
    """logrotate's postrotate: USR1 to each server of this folder, which then
    reopens its log file; to no other process."""
    for port in ports(True, None):
        for pid in {server(port, tidy=False), server(port, ".2", tidy=False)} - {None}:
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, signal.SIGUSR1)
    return 0


# Steps ----------------------------------------------------------------------


def launch(values):
    """Start gunicorn in a session of its own (it outlives this script and its
    terminal); return 0 once a worker answers. On a failure or Ctrl-C, stop it,
    leave no pidfile behind, and raise."""
    port, log = values["PORT"], log_file(values["PORT"])
    check_address(values)
    private(RUN, "sh start.sh", create=True)
    private(log.parent, "sh start.sh", create=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    with writing(log):  # its output goes there from the first instant
        output = os.open(log, flags, 0o640)
    offset = os.lseek(output, 0, os.SEEK_END)
    argv = [GUNICORN, "--pid", pid_argument(port), "--capture-output"]
    argv += ["--error-logfile", f"logs/{log.name}"]  # relative: the folder may move
    # PWD: the folder as named now; a reload checks that it has not moved since.
    env = dict(os.environ, PWD=str(PROJECT))
    kid = subprocess.Popen(
        argv,
        cwd=PROJECT,
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
    )
    os.close(output)

    def ready():
        if kid.poll() is not None:
            raise Failure(
                f"gunicorn exited ({kid.returncode}): {error_in(log, offset)}"
            )
        code, master, _ = probe(values)
        if master == kid.pid and code != 200:
            raise Failure(f"the app answers {code} at {CONF['PING']}")
        return master == kid.pid

    try:
        wait_until(ready, values["START_TIMEOUT"], "the app to answer")
    except BaseException as error:
        shield()
        end([kid.pid], 5)  # our child: its pid is not reused until we wait
        kid.wait()
        pidfile(port).unlink(missing_ok=True)
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt("stopped the server that was starting") from None
        raise Failure(f"start failed: {error} (logs/{log.name})") from None
    say(f"started {APP} (pid {kid.pid}) at {url(values)}, logs in logs/{log.name}")
    return 0


def upgrade(old, values):
    """Start a new master beside old (USR2), which loads the code and settings
    on disk; once a worker of the new one answers, retire old (TERM) and wait
    for gunicorn's promotion of the new one. When anything fails, old serves on."""
    port, log = values["PORT"], log_file(values["PORT"])
    check_reload(old, values)
    new, offset = None, log.stat().st_size if log.exists() else 0

    def answering():
        nonlocal new
        new = new or next(iter(new_masters(old)), None)
        if not proc(old) and read_pid(pidfile(port))[0] == old:
            # Killed meanwhile: its pidfile would stop the new one's promotion.
            pidfile(port).unlink()
        if new and not proc(new):
            raise Failure(f"it exited: {error_in(log, offset)}")
        if not new and not proc(old):
            raise Failure(f"pid {old} has ended meanwhile")
        code, master, _ = probe(values)
        if new and master == new and code != 200:
            raise Failure(f"it answers {code} at {CONF['PING']}")
        return new and master == new

    os.kill(old, signal.SIGUSR2)
    try:
        wait_until(answering, values["START_TIMEOUT"], "the new master to answer")
    except BaseException as error:
        shield()
        with contextlib.suppress(Failure):  # a Ctrl-C may come before the fork
            wait_until(lambda: new_masters(old), 0.5, "the fork")
        end(new_masters(old) | {new} - {None}, 5, "the new master")
        kept = (
            f"pid {old} serves on" if proc(old) else f"{APP} has stopped: sh start.sh"
        )
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt(kept) from None
        raise Failure(f"the new code did not start: {error}; {kept}") from None
    with contextlib.suppress(ProcessLookupError):  # killed meanwhile
        os.kill(old, signal.SIGTERM)

    def promoted():
        if not proc(new):
            raise Failure(
                f"the new master (pid {new}) stopped: {error_in(log, offset)}"
            )
        return not proc(old) and read_pid(pidfile(port))[0] == new

    try:
        finish = f"pid {old} to finish its requests"
        wait_until(promoted, graceful(old, values) + 10, finish)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"pid {new} serves; {finish}") from None
    say(f"reloaded {APP} at {url(values)}: pid {new} serves, pid {old} retired")


def check_reload(old, values):
    """Raise a Failure, before any signal, when a reload of master old could
    not deliver what a fresh start would, or its new code does not load."""
    port, env, argv = values["PORT"], environ(old), proc(old).argv
    if kid := min({server(port, ".2"), *new_masters(old)} - {None, old}, default=0):
        raise Failure(f"pid {kid}, of a reload cut short, runs: {RESTART}")
    # A new master that gunicorn has yet to promote ignores a USR2.
    promoting = f"gunicorn to promote pid {old}"
    wait_until(lambda: read_pid(pidfile(port))[0] == old, 5, promoting)
    moved = env.get("PWD", str(PROJECT)) != str(PROJECT)  # PWD: see launch()
    if moved or not all(map(os.path.exists, argv[:2])):
        raise Failure(f"the folder or venv moved since pid {old} started: {RESTART}")
    if os.path.realpath(argv[1]) != os.path.realpath(GUNICORN):  # USR2 runs that one
        raise Failure(f"pid {old} runs {argv[1]}, not {GUNICORN}: {RESTART}")
    # A new master gets the environment the first one was started with.
    given = names(os.environ) | names(env)
    if differ := sorted(n for n in given if os.environ.get(n) != env.get(n)):
        raise Failure(
            f"{differ[0]} is not as pid {old} was started with, and a reload "
            f"keeps that: give restart.sh the same, or {RESTART}"
        )
    note_shadowed(old)
    _, master, listening = probe(values)
    if master != old:
        raise Failure(f"pid {old} does not answer at {url(values)}")
    if listening != address(values["HOST"]):  # a new master keeps the socket
        raise Failure(
            f"pid {old} listens on {listening}: a new HOST needs a stop and a "
            f"start: {RESTART}"
        )
    check = subprocess.run(
        [GUNICORN, "--check-config"], cwd=PROJECT, env=env, capture_output=True
    )
    if check.returncode:
        why = first_error((check.stderr + check.stdout).decode(errors="replace"))
        raise Failure(f"the new code does not load: {why}; pid {old} serves on")


def drain(ports, values):
    """Have /health/ready of the servers on ports answer 503 for DRAIN_SECONDS
    while they serve all else, so that load balancers stop sending first."""
    if not ports or not values["DRAIN_SECONDS"]:
        return
    try:
        for port in ports:
            with writing(drain_file(port)):
                flags = os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO: no wait
                os.close(os.open(drain_file(port), flags, 0o600))
        say(
            f"draining {APP} for {values['DRAIN_SECONDS']} s: /health/ready answers 503"
        )
        time.sleep(values["DRAIN_SECONDS"])
    except KeyboardInterrupt:  # Ctrl-C stops nothing
        for port in ports:
            drain_file(port).unlink(missing_ok=True)
        raise KeyboardInterrupt(f"{APP} keeps serving") from None


def end(masters, wait, who=APP):
    """TERM masters of ours and wait until they are gone; after wait seconds,
    KILL each one still the master seen at the TERM: with its process group
    (its workers) when it leads one; a new master of a reload shares its old
    master's group, and its workers exit when they see their master gone. The
    message of a KILL names who (the app, or the new master of a reload)."""
    seen = {pid: found.start for pid in masters if (found := proc(pid))}
    for pid in seen:
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile
            os.kill(pid, signal.SIGTERM)

    def gone():
        return not any(same(pid, start) for pid, start in seen.items())

    with contextlib.suppress(Failure):
        return wait_until(gone, wait, "the server to stop")
    for pid, start in seen.items():
        with contextlib.suppress(OSError):
            if same(pid, start):
                leads = os.getpgid(pid) == pid
                (os.killpg if leads else os.kill)(pid, signal.SIGKILL)
    wait_until(gone, 10, "the killed server to go")
    say(f"{who} did not stop within {wait} s: killed")


def name_the_others(done):
    """Name every other running server of this folder, and how to stop it."""
    for port in sorted(set(ports(True, None)) - set(done)):
        if pid := server(port, tidy=False):
            stop_it = f"PORT={port} sh stop.sh, or sh stop.sh --all"
            say(f"{APP} also runs on port {port} (pid {pid}): {stop_it}")


# Which processes are ours ---------------------------------------------------


def pidfile(port, suffix=""):
    """gunicorn's pidfile of the server on port; ".2": its new master's, in a reload."""
    return RUN / f"app-{port}.pid{suffix}"


def log_file(port):
    """The log of the server on port: gunicorn's lines, the app's, the access lines."""
    return PROJECT / "logs" / f"app-{port}.log"


def drain_file(port):
    """The file that has the server drain; gunicorn.conf.py names it to the app."""
    return RUN / f"app-{port}.drain"


def pid_argument(port):
    """The --pid given to gunicorn: relative, so that a renamed folder still works."""
    path = pidfile(port)
    return str(path.relative_to(PROJECT) if path.is_relative_to(PROJECT) else path)


def ports(every, values):
    """Return the ports of every server with a pidfile in run/, or of PORT alone."""
    if not every:
        return [values["PORT"]]
    found = (re.fullmatch(r"app-(\d+)\.pid", path.name) for path in RUN.glob("app-*"))
    return sorted(int(match[1]) for match in found if match)


def server(port, suffix="", tidy=True):
    """Return the pid of our master named in pidfile(port, suffix), or None. A
    pidfile that names none is removed (with tidy), never acted on."""
    path = pidfile(port, suffix)
    pid, age = read_pid(path)
    found = proc(pid)
    if found and launched(found, port) and found.age + 2 >= age:
        # A worker runs its master's command line; so does a new master of a
        # reload, but with GUNICORN_PID naming its parent.
        parent = proc(found.ppid)
        if not parent or parent.argv != found.argv or not launched(parent, port):
            return pid
        return (
            pid if environ(pid).get("GUNICORN_PID") == str(found.ppid) else found.ppid
        )
    if not suffix and (kid := server(port, ".2", tidy=False)):
        return kid  # its old master has gone, and gunicorn promotes it soon
    if tidy and path.exists() and read_pid(path)[0] == pid:  # not promoted since
        path.unlink()
        say(f"removed run/{path.name}: it names no server of {APP}")
        with contextlib.suppress(Failure):  # a killed master's workers finish
            wait_until(lambda: not alive_group(pid), 5, "its workers to exit")
    return None


def launched(found, port):
    """Say whether the process found (see proc) is a gunicorn this folder
    launched for port: it runs in the folder, with the pidfile of port."""
    pairs = zip(found.argv, found.argv[1:], strict=False)
    return found.cwd == str(PROJECT) and ("--pid", pid_argument(port)) in pairs


def alive_group(pid):
    """Say whether process group pid has members: a killed master of ours (a
    session leader) leaves its workers in its group, serving for a moment."""
    if not pid or proc(pid):
        return False
    try:
        os.killpg(pid, 0)
    except OSError:
        return False
    return True


def new_masters(old):
    """Return the pids of the new masters old forked on a USR2: gunicorn gives
    each one old's pid in GUNICORN_PID (a worker has none)."""
    with contextlib.suppress(OSError):
        kids = Path(f"/proc/{old}/task/{old}/children").read_text().split()
        return {
            int(kid) for kid in kids if environ(kid).get("GUNICORN_PID") == str(old)
        }
    return set()


def proc(pid):
    """Return what /proc says of pid (a Process), or None unless it is a live
    process of this user's."""
    try:
        status = Path(f"/proc/{int(pid)}/status").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        uid = re.search(r"^Uid:\s+\d+\s+(\d+)", status, re.M)
        if not uid or uid[1] != str(os.geteuid()) or fields[0] in "ZX":
            return None
        # Ages, not times: the boot clock goes on when the wall clock is set.
        age = time.clock_gettime(time.CLOCK_BOOTTIME)
        age -= int(fields[19]) / os.sysconf("SC_CLK_TCK")
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        cwd = os.readlink(f"/proc/{pid}/cwd")
        return Process(int(fields[1]), fields[19], age, cwd, argv.split("\0")[:-1])
    except (OSError, TypeError, ValueError):
        return None


def same(pid, start):
    """Say whether pid is still the process that started at start (see proc)."""
    return getattr(proc(pid), "start", None) == start


def environ(pid):
    """Return the environment pid was started with ({} when unreadable)."""
    with contextlib.suppress(OSError):
        words = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        return dict(word.split("=", 1) for word in words.split("\0") if "=" in word)
    return {}


def names(env):
    """The names in env that gunicorn, Python or the app read, and a reload
    cannot change: HOST and PORT aside (the socket stays), and the settings
    only this program reads."""
    ours = {"HOST", "PORT", "START_TIMEOUT", "DRAIN_SECONDS"}
    ours |= {"GUNICORN_PID", "GUNICORN_FD"}  # what gunicorn gives a new master
    read = set(CONF["SETTINGS"]) | {"FORWARDED_ALLOW_IPS", "TZ", "LANG"}
    prefixes = ("FLASK_", "GUNICORN_", "PYTHON", "LC_")
    return {n for n in env if (n in read or n.startswith(prefixes)) and n not in ours}


def note_shadowed(pid):
    """Name each setting master pid has from the environment it was started
    with that hides another value in .env."""
    env, dotenv = environ(pid), {}
    with contextlib.suppress(OSError, UnicodeDecodeError):  # settings() warned
        dotenv = CONF["env_file"]()
    for name in sorted(n for n in names(env) if n in dotenv and dotenv[n] != env[n]):
        where = "from its environment, not from .env"
        warn(f"note: pid {pid} has {name} {where}: {RESTART} to apply .env")


def graceful(pid, values):
    """Seconds master pid may take to finish its requests (gunicorn enforces
    its own): the largest of its environment's, .env's now and the default."""
    given = environ(pid).get("GRACEFUL_TIMEOUT", "")
    return max(values["GRACEFUL_TIMEOUT"], int(given) if given.isdigit() else 0, 30)


def shield():
    """Ignore further interrupts: the clean-up under way must finish."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)


# Files ------------------------------------------------------------------------


def private(folder, fix, create):
    """Make folder (0700) if it is missing and create says so; refuse one that
    another user owns or can write, or a link: its files would steer what this
    user signals and writes. Root too refuses, and names who should act."""
    if create and not os.path.lexists(folder):
        with writing(folder):
            folder.mkdir(0o700)
    with contextlib.suppress(FileNotFoundError):
        info = os.lstat(folder)
        if info.st_uid != os.geteuid():
            owner = {u.pw_uid: u.pw_name for u in pwd.getpwall()}.get(info.st_uid)
            raise Failure(
                f"{folder} is {owner}'s: act as {owner}: runuser -u {owner} -- {fix}"
            )
        if not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o022:
            raise Failure(
                f"{folder} must be a folder (not a link) only you can write: "
                f"chmod go-w {folder}"
            )


@contextlib.contextmanager
def lock(values):
    """Let one script at a time act on this folder's servers; wait for another
    (a start waiting for the app, say) up to its own deadlines."""
    if not RUN.is_dir():  # nothing was ever started here
        yield
        return
    with writing(RUN / "lock"):
        fd = os.open(RUN / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)

    def taken():
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    try:
        wait = values["START_TIMEOUT"] + values["GRACEFUL_TIMEOUT"] + 10
        wait_until(taken, wait, f"another script acting on {APP} to finish")
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
            errno.EACCES: "permission denied (act as the folder's owner)",
            errno.EROFS: "the file system is read-only",
            errno.ELOOP: "it is a link: remove it",
        }
        raise Failure(
            f"cannot write {path}: {causes.get(error.errno or 0) or error.strerror}"
        ) from None


def read_pid(path):
    """Return the pid in pidfile path and the file's age in seconds; (None, 0)
    unless it is a file of this user's that holds a number (no link is followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None, 0
    with open(fd, "rb") as file:
        info = os.fstat(fd)
        mine = stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()
        text = file.read(32).strip() if mine else b""
    if not (text.isdigit() and 0 < int(text) < 1 << 22):  # Linux's largest pid
        return None, 0
    return int(text), time.time() - info.st_mtime


def error_in(log, offset):
    """Return the line of log, after offset, that best says what went wrong."""
    if RUN != PROJECT / "run":  # under systemd
        return "the journal says why (journalctl -u the unit)"
    with contextlib.suppress(OSError), open(log, "rb") as lines:
        lines.seek(offset)
        return first_error(lines.read().decode(errors="replace"))
    return "nothing was logged"


def first_error(text):
    """The first exception line of text ("ConfigError: ..."), else its last line."""
    lines = text.strip().splitlines() or ["nothing was logged"]
    lines = [line.strip() for line in lines]  # the log indents a traceback's lines
    errors = [
        line for line in lines if re.match(r"error: |\w*(Error|Exception): ", line)
    ]
    if not errors:
        return lines[-1]
    # Where it happened: the last frame a traceback names before it.
    before = "\n".join(lines[: lines.index(errors[0])])
    frames = re.findall(r'File "([^"]+)", line (\d+)', before) or [("", "")]
    file, line = frames[-1]
    where = f" ({file.removeprefix(f'{PROJECT}/')}, line {line})" if file else ""
    return errors[0] + where


# Waits and the network ------------------------------------------------------


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


def url(values):
    """The URL the server listens at."""
    return f"http://{CONF['host_port'](values['HOST'], values['PORT'])}"


def probe(values, timeout=1.0):
    """Ask /health/ping on HOST:PORT (loopback for a wildcard HOST); return the
    status code, and the pid of the master whose worker answered and the
    address it listens on (gunicorn.conf.py names them), None when unknown."""
    host = address(values["HOST"])  # where gunicorn listens, not another program
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        with socket.create_connection((host, values["PORT"]), timeout) as conn:
            conn.sendall(f"GET {CONF['PING']} HTTP/1.0\r\n\r\n".encode())
            head = conn.recv(4096).decode("latin-1")  # the head: one read, one deadline
    except (OSError, TypeError):
        return None, None, None
    code = re.match(r"HTTP/\S+ (\d{3})", head)
    mark = re.search(rf"(?im)^{CONF['MASTER_HEADER']}: (\d+) (\S+)", head) or [None] * 3
    return int(code[1]) if code else None, mark[1] and int(mark[1]), mark[2]


def check_address(values):
    """Raise a Failure naming the cause when HOST:PORT cannot be listened on;
    the probe binds as gunicorn does (SO_REUSEADDR: TIME_WAIT is no obstacle)."""
    host, port = values["HOST"], values["PORT"]
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as test:
            test.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            test.bind((host, port))
    except OSError as error:
        why = f"cannot listen on {host}:{port}: {error}"
        if error.errno == errno.EADDRINUSE:
            why = f"port {port} is in use: use another, e.g. "
            why += f"PORT={port % 65535 + 1} sh start.sh"
        elif error.errno == errno.EADDRNOTAVAIL:
            why = f"{host} is not an address of this host: use one it has "
            why += "(ip address), or 0.0.0.0 for all"
        elif error.errno == errno.EACCES:
            why = f"port {port} needs root (below 1024): use PORT=5000, with "
            why += "nginx in front for port 80"
        raise Failure(why) from None


def address(host):
    """The address gunicorn listens on for HOST (IPv4 for a name, as it does)."""
    with contextlib.suppress(OSError):
        return host if ":" in host else socket.gethostbyname(host)


def in_use(port, every=False):
    """Return " on port P", and say when another program listens there."""
    with socket.socket() as test:
        if every or test.connect_ex(("127.0.0.1", port)):
            return "" if every else f" on port {port}"
    return f" on port {port}; port {port} is in use"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
