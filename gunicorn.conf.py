"""gunicorn settings. gunicorn reads this file from the project folder by itself.

HOST, PORT, WEB_CONCURRENCY, LOG_LEVEL, GRACEFUL_TIMEOUT and ACCESS_LOG come
from the environment or .env (ops/settings.py); under start.sh, from the record
start.sh or restart.sh checked and wrote. Nothing of the app is imported here:
this file must load even when the app is broken, so that the error reaches the
log. In the foreground (systemd, containers) logs go to stderr and access lines
to stdout; under start.sh, to files in logs/.
"""

import contextlib
import gc
import os
import sys

from gunicorn import glogging

from ops import jsonlog, settings
from ops.systemd import pre_exec  # noqa: F401 (a hook: under systemd, for USR2)

try:
    record = settings.launched_by_start()
    values = record["settings"] if record else settings.read()
    if record and "GUNICORN_PID" in os.environ:  # a new master, by a USR2
        # restart.sh puts the new settings there; without them, no reload is
        # under way (a stray or late USR2), and the old master must stay alone.
        values = record.get("next") or sys.exit(
            "error: new code comes by sh restart.sh"
        )
except (OSError, ValueError, KeyError, settings.SettingError) as error:
    # A HUP has the running master read this file again, and an error here
    # would stop it: it keeps the settings it has (a restart checks them).
    if settings.in_force is None:  # at the start: one line, not a traceback
        sys.exit(f"{type(error).__name__}: {error}")
    print(f"warning: {error}; keeping the settings in force", file=sys.stderr)
    record, values = settings.in_force
settings.in_force = record, values

wsgi_app = "wsgi:app"
# Always set: without it gunicorn binds 0.0.0.0:$PORT whenever PORT is set.
bind = settings.bind_address(values)

# gthread, 2 workers x 4 threads: it and 2 x 2 were the two fastest simple
# setups on 2 cores, within a few percent of each other (bench/run.py, README
# "Performance"): 5,600 requests/s, against 4,900-5,300 for 2 to 5 sync workers
# and 2,100 for 1 x 4 (one worker is one core).
# Threads keep connections alive and are not blocked by one slow client as sync
# workers are. Scale workers with cores, about 1 per core (WEB_CONCURRENCY); add
# threads for apps that wait on I/O (databases, HTTP calls).
worker_class = "gthread"
workers = values["WEB_CONCURRENCY"]
threads = 4
# Idle keep-alive connections are closed after this many seconds; a proxy in
# front must use a shorter upstream keep-alive timeout (deploy/nginx-site.conf).
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

# One format for gunicorn's lines and the app's (keep in step with app/log.py).
# gunicorn's own lines have no request id: the default "-" stands in.
loglevel = values["LOG_LEVEL"]
logconfig_dict = {
    "root": {"level": loglevel.upper(), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {
            "level": loglevel.upper(),
            "handlers": ["stderr"],
            "propagate": False,
        },
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "stream": "ext://sys.stderr",
        },
    },
    "formatters": {
        "line": {
            "()": "logging.Formatter",
            "fmt": "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] "
            "%(name)s: %(message)s",
            "defaults": {"request_id": "-"},
        },
    },
}
json_lines = values.get("LOG_FORMAT") == "json"  # ops/jsonlog.py
if json_lines:
    logconfig_dict["formatters"]["line"] = {"()": "ops.jsonlog.JsonFormatter"}
# Access lines: time, client, request, status, bytes, duration, request id.
access_log_format = '%(t)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms %({x-request-id}o)s'
if record:
    # start.sh: the pidfile and both logs under run/ and logs/, one set per port;
    # print() and anything written to stderr go to the log too.
    port = values["PORT"]
    for folder in settings.RUN, settings.LOGS:  # on a HUP, gunicorn needs them
        with contextlib.suppress(OSError):
            folder.mkdir(exist_ok=True)
    pidfile = str(settings.pidfile(port))
    errorlog = str(settings.error_log(port))
    capture_output = True
    accesslog = str(settings.access_log(port)) if values["ACCESS_LOG"] else None
else:
    # In the foreground: access lines to stdout (the journal under systemd).
    accesslog = "-" if values["ACCESS_LOG"] else None


class Logger(glogging.Logger):
    """gunicorn's logger, minus the access line work when there is no access log.

    With logconfig_dict set, gunicorn builds every access line even when no file
    takes it: about 50 µs, a sixth of the CPU time of the ping, on 2 cores.
    """

    def setup(self, cfg):
        """gunicorn's setup; with LOG_FORMAT=json, access lines as JSON too."""
        super().setup(cfg)
        for handler in self.access_log.handlers if json_lines else ():
            handler.setFormatter(jsonlog.JsonFormatter())

    def access(self, resp, req, environ, request_time):
        """Log the request only when an access log file is set, and a health
        probe's only when HEALTH_ACCESS_LOG is on."""
        probe = environ.get("PATH_INFO", "").startswith("/health/")
        if not self.cfg.accesslog or probe and not values.get("HEALTH_ACCESS_LOG", 1):
            return
        if not json_lines:
            super().access(resp, req, environ, request_time)
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        fields = jsonlog.access_fields(atoms)
        line = f"{fields['method']} {fields['path']} {fields['status']}"
        self.access_log.info(line, extra={"access": fields})


logger_class = Logger


def when_ready(server):
    """Hide the preloaded app's objects from the garbage collector before the
    workers fork (Python's gc docs advise it for fork without exec): a worker's
    collections, and its exit, then never touch, and so copy, the memory it
    shares with the master. A stop takes about 0.15 s less.

    Then fork every worker at once: gunicorn waits up to 0.1 s at random after
    each fork, which with the app preloaded spreads out nothing, and start.sh
    waits for the last worker (about 50 ms less, README "Performance")."""
    gc.freeze()
    for _ in range(server.num_workers - len(server.WORKERS)):
        server.spawn_worker()


def post_worker_init(worker):
    """Have /health/ping answers name the master of the worker that answered:
    while a new master starts beside the old one, both share the socket, and
    restart.sh retires the old one only once the new one's workers answer."""
    app = worker.wsgi

    def named(environ, start_response):
        if environ.get("PATH_INFO") != "/health/ping":
            return app(environ, start_response)

        def start(status, headers, exc_info=None):
            headers.append((settings.MASTER_HEADER, str(worker.ppid)))
            return start_response(status, headers, exc_info)

        return app(environ, start)

    worker.wsgi = named
