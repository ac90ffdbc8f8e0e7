"""gunicorn settings. gunicorn reads this file from the project folder by itself,
on start and again on HUP (restart.sh), so edited settings and .env take effect.

HOST, PORT, WEB_CONCURRENCY, LOG_LEVEL, GRACEFUL_TIMEOUT and ACCESS_LOG come
from the environment or .env (ops/settings.py). Nothing of the app is imported
here: this file must load even when the app is broken, so that the error reaches
the log. Logs go to stderr and access lines to stdout, as systemd wants them;
start.sh adds the pidfile, log files and --capture-output.
"""

import logging
import os
import secrets

from gunicorn import glogging

from ops import settings

values = settings.read()

wsgi_app = "wsgi:app"
# Always set: without it gunicorn binds 0.0.0.0:$PORT whenever PORT is set.
bind = settings.bind_address(values)

# gthread, 2 workers x 4 threads: with 2 x 2 the fastest simple setup on 2 cores
# in every run, the two within a few percent (bench/run.py, README
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
# Off, so that a reload (HUP) imports changed code and settings anew.
preload_app = False
# Never debug mode here: the debugger would let any client run code.
os.environ.pop("FLASK_DEBUG", None)
# gunicorn 25.1+ opens one control socket per user; a second app would take it over.
control_socket_disable = True

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
        # One line per worker that has loaded the app, whatever LOG_LEVEL says:
        # start.sh and restart.sh wait for them all before they report success.
        "gunicorn.ready": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
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
# Access lines: time, client, request, status, bytes, duration, request id.
# They go to stdout (the journal under systemd) unless ACCESS_LOG=off; start.sh
# sends them to logs/access-PORT.log instead.
accesslog = "-" if values["ACCESS_LOG"] else None
access_log_format = '%(t)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms %({x-request-id}o)s'


class Logger(glogging.Logger):
    """gunicorn's logger, minus the access line work when there is no access log.

    With logconfig_dict set, gunicorn builds every access line even when no file
    takes it: about 50 µs, a sixth of the CPU time of the ping, on 2 cores.
    """

    def access(self, resp, req, environ, request_time):
        """Log the request only when an access log file is set."""
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = Logger

# One random secret key per server, made here in the master so that all its
# workers (and those after a reload) share it; the app uses it only when no
# SECRET_KEY is configured. The names match SERVER_KEY_VARIABLE and
# KEY_WARNED_VARIABLE in app/config.py.
os.environ.setdefault("_APP_SERVER_SECRET_KEY", secrets.token_hex(32))


def post_fork(server, worker):
    """Let only the server's first worker warn that the secret key is random."""
    if worker.age > 1:
        os.environ["_APP_SECRET_KEY_WARNED"] = "1"


def post_worker_init(worker):
    """Log that this worker has loaded the app and is about to serve."""
    logging.getLogger("gunicorn.ready").info("worker ready (pid: %s)", worker.pid)
