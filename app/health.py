"""Health endpoints for load balancers and monitors.

/health/ping answers at once with no I/O: it says the process is up. Neither
is refused by host checking (TRUSTED_HOSTS).
/health/ready runs the readiness checks the app registers, e.g. in create_app:

    def database_answers():
        db.session.execute(text("SELECT 1"))  # raises when the database is down

    health.add_check(app, "database", database_answers, timeout=1)

Each check runs in a daemon thread of its own, one run at a time in each
worker, and fails past its deadline (HEALTH_CHECK_TIMEOUT by default): a check
that hangs holds that one thread, not the probe, and no worker waits for it
to exit.
"""

import inspect
import math
import os
import threading
import time
import types

import flask
from flask import Blueprint, current_app

from app.config import ConfigError

bp = Blueprint("health", __name__, url_prefix="/health")
# The exact paths spared host checking: any other, /health//ping say, would
# answer a redirect to a URL built from the Host.
PROBES = {"/health/ping", "/health/ready"}


class Request(flask.Request):
    """Flask's request, with no host checking (TRUSTED_HOSTS) under /health/:
    probes (start.sh, container health checks, the kubelet) send a loopback or
    pod address as Host, which no list of the site's names holds."""

    _trusted_hosts = None

    @property
    def trusted_hosts(self):
        """The host names Flask checks Host against; None for health probes."""
        return None if self.path in PROBES else self._trusted_hosts

    @trusted_hosts.setter
    def trusted_hosts(self, hosts):
        self._trusted_hosts = hosts


def init_app(app):
    """Serve /health/*; refuse a HEALTH_CHECK_TIMEOUT that no probe can wait for."""
    seconds = app.config["HEALTH_CHECK_TIMEOUT"]
    if not 0 < seconds <= 60:  # nan and inf too
        source = app.extensions["settings_sources"]["HEALTH_CHECK_TIMEOUT"]
        raise ConfigError(
            f"{source}: HEALTH_CHECK_TIMEOUT must be more than 0 and at most 60 "
            f"seconds, not {seconds!r}"
        )
    app.register_blueprint(bp)


def add_check(app, name, check, timeout=None):
    """Register check, a function that raises or returns False when not ready;
    past timeout seconds (default: HEALTH_CHECK_TIMEOUT) it counts as failing."""
    checks = app.extensions.setdefault("health_checks", {})
    if name in checks:
        raise ValueError(f"a readiness check named {name!r} is already registered")
    if inspect.iscoroutinefunction(check):  # its coroutine would never run
        raise ValueError(f"readiness check {name!r} must be a plain function")
    if timeout is not None and not 0 < timeout <= 60:
        raise ValueError(f"readiness check {name!r}: timeout must be 0 to 60 s")
    checks[name] = types.SimpleNamespace(
        app=app, function=check, timeout=timeout, lock=threading.Lock(), run=None
    )


def start(check, timeout):
    """Start a run of check in a daemon thread, with timeout seconds until its
    deadline, unless one is still running (a hung check is never run twice at
    once, and a probe waits no longer than that run's own deadline)."""
    with check.lock:
        if check.run is None or check.run.done.is_set():
            check.run = types.SimpleNamespace(done=threading.Event(), ok=False)
            check.run.error, check.run.finished = None, math.inf
            check.run.timeout, check.run.deadline = timeout, time.monotonic() + timeout
            job = (check.app, check.function, check.run)
            threading.Thread(target=call, args=job, daemon=True).start()
        return check.run


def call(app, function, run):
    """Run function once, in an app context, and record in run how it went."""
    try:
        with app.app_context():
            run.ok = function() is not False
    except BaseException as error:  # SystemExit too: it would end this thread only
        run.error = error
    finally:
        run.finished = time.monotonic()
        run.done.set()


@bp.get("/ping")
def ping():
    """Say the process is up: cheap enough to call constantly."""
    return {"status": "ok", "app": current_app.config["APP_NAME"]}


@bp.get("/ready")
def ready():
    """Run every readiness check at once; 503 names those that fail, raise
    or run past their deadline. 503 too while stop.sh drains the server
    (DRAIN_SECONDS), so that balancers move away."""
    if os.path.exists(os.environ.get("DRAIN_FILE", "")):  # gunicorn.conf.py
        return {"status": "draining"}, 503
    checks = current_app.extensions.get("health_checks", {})
    default = current_app.config["HEALTH_CHECK_TIMEOUT"]
    runs = {
        name: start(check, check.timeout or default) for name, check in checks.items()
    }
    failing = []
    for name, run in runs.items():
        run.done.wait(max(0, run.deadline - time.monotonic()))
        late = run.finished > run.deadline
        if late:
            current_app.logger.warning(
                "readiness check %s gave no answer within %s s", name, run.timeout
            )
        elif run.error:
            current_app.logger.error(
                "readiness check %s failed", name, exc_info=run.error
            )
        if late or not run.ok:
            failing.append(name)
    if failing:
        return {"status": "unavailable", "failing": failing}, 503
    return {"status": "ok"}
