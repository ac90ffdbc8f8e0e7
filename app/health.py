"""Health endpoints for load balancers and monitors.

/health/ping answers at once with no I/O: it says the process is up. Neither
is refused by host checking (TRUSTED_HOSTS).
/health/ready runs the readiness checks the app registers, e.g. in create_app:

    def database_answers():
        db.session.execute(text("SELECT 1"))  # raises when the database is down

    health.add_check(app, "database", database_answers)
"""

import os

import flask
from flask import Blueprint, current_app

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


def add_check(app, name, check):
    """Register check, a function that raises or returns False when not ready."""
    app.extensions.setdefault("health_checks", {})[name] = check


@bp.get("/ping")
def ping():
    """Say the process is up: cheap enough to call constantly."""
    return {"status": "ok", "app": current_app.config["APP_NAME"]}


@bp.get("/ready")
def ready():
    """Run every readiness check; 503 names those that fail. 503 too while
    stop.sh drains the server (DRAIN_SECONDS), so that balancers move away."""
    if os.path.exists(os.environ.get("DRAIN_FILE", "")):  # gunicorn.conf.py
        return {"status": "draining"}, 503
    failing = []
    for name, check in current_app.extensions.get("health_checks", {}).items():
        try:
            if check() is False:
                failing.append(name)
        except Exception:
            current_app.logger.exception("readiness check %s failed", name)
            failing.append(name)
    if failing:
        return {"status": "unavailable", "failing": failing}, 503
    return {"status": "ok"}
