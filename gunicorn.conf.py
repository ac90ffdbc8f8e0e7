"""gunicorn settings, and the one reader of the server's settings.

gunicorn reads this file from the project folder by itself; the scripts
(ops/ctl.py) and `flask settings` run it to learn the settings. Each one comes
from the environment, else .env, else its default. gunicorn stops on a bad
value with one line naming it; the scripts decide for themselves (a stop works
whatever .env holds). Nothing of the app is imported here: this file must load
even when the app is broken, so that the error reaches the log. In the
foreground (systemd, containers) the log is stderr and stdout; the scripts
send both to logs/app-PORT.log.
"""

import contextlib
import difflib
import gc
import os
import re
import sys
import time
import types
from pathlib import Path

PROJECT = Path(__file__).resolve().parent
# A worker's answer at /health/ping names its master and address (see below).
PING, MASTER_HEADER = "/health/ping", "X-Master"
LEVELS = ("debug", "info", "warning", "error", "critical")

# A host name, an IPv4 address, or an IPv6 one (two colons at least: one
# colon is a host and a port), in brackets or not.
IPV6 = r"[0-9A-Fa-f.]*(?::[0-9A-Fa-f.]*){2,}"
ADDRESS = rf"[A-Za-z0-9.\-]+|{IPV6}|\[{IPV6}\]"
# name: (default, what a value may be: a range of whole numbers, the words
# allowed, or a pattern)
SETTINGS: dict[str, tuple[str, range | tuple[str, ...] | re.Pattern[str]]] = {
    "HOST": ("127.0.0.1", re.compile(ADDRESS)),
    "PORT": ("5000", range(1, 65536)),
    "WEB_CONCURRENCY": ("2", range(1, 65)),
    "LOG_LEVEL": ("info", LEVELS),
    "LOG_FORMAT": ("text", ("text", "json")),
    "ACCESS_LOG": ("on", ("on", "off")),
    "HEALTH_ACCESS_LOG": ("on", ("on", "off")),
    "GRACEFUL_TIMEOUT": ("30", range(1, 3601)),
    "START_TIMEOUT": ("30", range(1, 3601)),
    "DRAIN_SECONDS": ("0", range(0, 3601)),
    "STATSD_HOST": ("", re.compile(f"{ADDRESS}|")),  # empty: no metrics
    "STATSD_PORT": ("8125", range(1, 65536)),
}
# What a value of each pattern may look like.
EXAMPLES = {
    "HOST": "an address such as 127.0.0.1, or 0.0.0.0 for all",
    "STATSD_HOST": "an address such as 127.0.0.1 (its port goes in STATSD_PORT), "
    "or nothing for no metrics",
}


def checked(name, text):
    """Return text as the value of setting name; raise ValueError saying
    what the value may be."""
    allowed = SETTINGS[name][1]
    if isinstance(allowed, range):
        if text.isascii() and text.isdigit() and int(text) in allowed:
            return int(text)
        raise ValueError(f"use a whole number from {allowed[0]} to {allowed[-1]}")
    if isinstance(allowed, tuple):
        if text.lower() in allowed:
            return text.lower()
        raise ValueError(f"use one of {', '.join(allowed)}")
    if allowed.fullmatch(text):
        return text[1:-1] if text[:1] + text[-1:] == "[]" else text  # [::1]
    raise ValueError(f"use {EXAMPLES[name]}")


def host_port(host, port):
    """Return host:port, an IPv6 host in brackets, as gunicorn takes them."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def env_file():
    """Return the variables of the project's .env, {} when there is none."""
    if not (PROJECT / ".env").is_file():
        return {}
    from dotenv import dotenv_values  # about 20 ms: only when there is a .env

    return dotenv_values(PROJECT / ".env")


def read(environ):
    """Return the settings, where each came from, and the problems found, one
    line each: a bad value is replaced by its default, and the caller decides
    whether to go on."""
    filed_in, dotenv, problems = str(PROJECT / ".env"), {}, []
    try:
        dotenv = env_file()
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"{filed_in} cannot be read: {error}")
    for name in dotenv.keys() - SETTINGS.keys():
        # Close to a setting's name, or its letters in another order (PROT); the
        # app's own variables (APP_LOG_LEVEL, DB_PORT) are neither.
        near = difflib.get_close_matches(name, SETTINGS, n=1, cutoff=0.85)
        near += [known for known in SETTINGS if sorted(known) == sorted(name)]
        if near:
            problems.append(f"{name} in {filed_in} is not a setting: {near[0]}?")
    values, sources = {}, {}
    for name, (default, _) in SETTINGS.items():
        given, filed = environ.get(name, "").strip(), (dotenv.get(name) or "").strip()
        if given and given != filed:  # the same in both: `flask` copied .env
            text, sources[name] = given, "the environment"
        else:
            text, sources[name] = (filed, filed_in) if filed else (default, "default")
        try:
            values[name] = checked(name, text)
        except ValueError as error:
            problems.append(f"{name}={text!r} in {sources[name]}: {error}")
            values[name], sources[name] = checked(name, default), "default"
    return values, sources, problems


values, sources, problems = read(os.environ)
# A HUP runs this file again in the running master, where an exit would stop
# the server: there a bad value keeps the settings in force, with a warning.
in_force = vars(sys.modules.setdefault("server_settings", types.ModuleType("kept")))
if problems and __name__ == "__config__":  # gunicorn's name for this file
    if "values" not in in_force:
        sys.exit(f"error: {problems[0]}")
    print(f"warning: {problems[0]}; the settings in force stay", file=sys.stderr)
    values = in_force["values"]
if "values" in in_force:  # a HUP: its pidfile and log need their folders
    for folder in ("run", "logs"):
        with contextlib.suppress(OSError):
            (PROJECT / folder).mkdir(0o700, exist_ok=True)
in_force["values"] = values

wsgi_app = "wsgi:app"
# Always set: without it gunicorn binds 0.0.0.0:$PORT whenever PORT is set.
bind = host_port(values["HOST"], values["PORT"])
# gthread, 2 workers x 4 threads: with 2 x 2, the fastest simple setup on 2
# cores (docs/performance.md). Threads keep connections alive and are not held
# by one slow client as sync workers are. About 1 worker per core
# (WEB_CONCURRENCY); more threads for apps that wait on databases or HTTP calls.
worker_class = "gthread"
workers = values["WEB_CONCURRENCY"]
threads = 4
# Idle keep-alive connections close after this many seconds; a proxy in front
# must use a shorter upstream keep-alive timeout (deploy/nginx-site.conf).
keepalive = 5
# Seconds a stopping or replaced worker has to finish its requests.
graceful_timeout = values["GRACEFUL_TIMEOUT"]
# A worker silent for this many seconds is killed and replaced.
timeout = 30
# The app is loaded once, in the master, and every worker is a copy of it: a
# worker replaced later (a crash, a timeout) never imports code from disk, which
# may be half-edited by then. New code comes by a new master (restart.sh).
preload_app = True
# Never debug mode here: the debugger would let any client run code.
os.environ.pop("FLASK_DEBUG", None)
# gunicorn 25.1+ opens one control socket per user; a second app would take it over.
control_socket_disable = True
# The workers' heartbeat files in memory: a read-only container has no /tmp.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The server's files (logs, pidfiles) are readable by its group at most,
# whatever the umask it was started with.
os.umask(0o027)
# While stop.sh drains the server, /health/ready answers 503 (app/health.py).
# Under systemd, in the unit's runtime folder: the project is read-only there.
run = os.environ.get("RUNTIME_DIRECTORY", f"{PROJECT}/run")
os.environ["DRAIN_FILE"] = f"{run}/app-{values['PORT']}.drain"

# Metrics by statsd, gunicorn's own (docs/operations.md, "Metrics"): off
# unless STATSD_HOST is set. Named after the app as the app reads its name
# (FLASK_APP_NAME from the environment or .env, else the folder's), in the
# characters statsd allows.
statsd, statsd_host, name = values["STATSD_HOST"], None, None
if statsd:  # .env is read again only then
    statsd_host = host_port(statsd, values["STATSD_PORT"])
    with contextlib.suppress(OSError, UnicodeDecodeError):  # read() has said why
        name = os.environ.get("FLASK_APP_NAME") or env_file().get("FLASK_APP_NAME")
statsd_prefix = re.sub(r"[^A-Za-z0-9_-]", "_", name or PROJECT.name)

# One format for the app's lines and gunicorn's, defined in app/log.py: named
# here, not imported (gunicorn imports it as it sets logging up).
loglevel = values["LOG_LEVEL"]
accesslog = None  # the access lines take the handler below instead
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
style = "JsonFormatter" if values["LOG_FORMAT"] == "json" else "Formatter"
handler = {"class": "app.log.Handler", "formatter": "line"}
access = {"handlers": ["stdout"] if values["ACCESS_LOG"] == "on" else []}
access["filters"] = ["no_probes"] if values["HEALTH_ACCESS_LOG"] == "off" else []
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"()": f"app.log.{style}"}},
    "filters": {
        "no_probes": {"()": lambda: no_probes},
        "quiet_statsd": {"()": lambda: quiet_statsd},
    },
    "handlers": {
        "stderr": dict(handler, stream="ext://sys.stderr"),
        "stdout": dict(handler, stream="ext://sys.stdout"),
    },
    "root": {"level": loglevel.upper(), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {
            "handlers": ["stderr"],
            "filters": ["quiet_statsd"],
            "propagate": False,
        },
        "gunicorn.access": dict(access, propagate=False),
    },
}


def no_probes(record):
    """Leave health probes out of the access log (HEALTH_ACCESS_LOG=off)."""
    return not record.args["U"].startswith("/health/")


def quiet_statsd(record):
    """Let one "cannot send to statsd" a minute through, in each process: with
    the statsd server down, gunicorn would log a traceback per request."""
    if not record.getMessage().startswith("Error sending message to statsd"):
        return True
    if time.monotonic() < QUIET["until"]:
        return False
    QUIET["until"] = time.monotonic() + 60
    return True


QUIET = {"until": 0.0}  # in each process: gunicorn forks after logging is set


def when_ready(server):
    """Hide the preloaded app's objects from the garbage collector before the
    workers fork (Python's gc docs advise it for fork without exec): a worker's
    collections, and its exit, then never touch, and so copy, the memory it
    shares with the master. A stop takes about 0.15 s less. Then warn of what
    the app left open that every worker would share."""
    gc.freeze()
    ours = {listener.fileno() for listener in server.LISTENERS} | {0, 1, 2}
    if sock := getattr(server.log, "sock", None):
        ours.add(sock.fileno())
    elif statsd_host:  # gunicorn gives up on an address it cannot use, silently
        server.log.warning("no metrics: STATSD_HOST %s does not resolve", statsd)
    listed = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []
    for fd in set(map(int, listed)) - ours:
        with contextlib.suppress(OSError):  # the listing's own fd, now closed
            what = os.readlink(f"/proc/self/fd/{fd}")
            flags = int(Path(f"/proc/self/fdinfo/{fd}").read_text().split()[3], 8)
            # A database file, say; not a log, which is opened to append.
            file = what.startswith("/") and what != "/dev/null"
            writes = file and flags & (os.O_ACCMODE | os.O_APPEND) == os.O_RDWR
            if what.startswith("socket:") or writes:
                server.log.warning(
                    "the app opened %s while it loaded: every worker shares it, "
                    "and their queries would mix; open connections in each "
                    "worker, at first use (docs/database.md)",
                    "a socket" if what.startswith("socket:") else what,
                )


def post_worker_init(worker):
    """Have /health/ping answers name the worker's master and its address:
    during a reload two masters share the socket, and ops/ctl.py retires the
    old one only once a worker of the new one answers."""
    app, address = worker.wsgi, worker.sockets[0].getsockname()[0]
    mark = (MASTER_HEADER, f"{worker.ppid} {address}")

    def start_response_marked(environ, start_response):
        if environ.get("PATH_INFO") != PING:
            return app(environ, start_response)
        return app(
            environ,
            lambda status, headers, *exc_info: start_response(
                status, [*headers, mark], *exc_info
            ),
        )

    worker.wsgi = start_response_marked


def pre_exec(server):
    """Under systemd, in the new master of a reload just before its exec: put
    the sockets systemd passed back at fds 3, 4... gunicorn 27 has moved them,
    yet tells the new master LISTEN_FDS as if they were still there."""
    if server.systemd:
        import fcntl

        fds = [listener.fileno() for listener in server.LISTENERS]
        parked = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3 + len(fds)) for fd in fds]
        for fd in fds:
            os.set_inheritable(fd, False)
        for number, fd in enumerate(parked):
            os.dup2(fd, 3 + number, inheritable=True)
