"""Committed defaults: every setting the app reads is declared here, in UPPERCASE.

Real values go in instance/config.py (not committed) or in FLASK_<NAME> variables
(the environment or .env). A value from those takes the type of the setting here;
the environment may only set names declared here or by Flask itself. Where
the default says nothing of the type (None), an annotation says it.
"""

import os

# The project folder's name: `git clone ... myshop` gives an app called myshop.
APP_NAME = os.path.basename(os.path.dirname(os.path.abspath(__file__)))

# Signs sessions and cookies. Never commit one: set it in instance/config.py or
# FLASK_SECRET_KEY. Left empty, the first start makes one in instance/secret_key.
SECRET_KEY: str | bytes | None = None

# Old keys still accepted for signed data while you rotate SECRET_KEY.
SECRET_KEY_FALLBACKS: list[str] = []

# Largest request body in bytes; a bigger one answers 413.
MAX_CONTENT_LENGTH: int | None = 16 * 1024 * 1024

# Session cookies are not sent on cross-site requests (CSRF protection).
SESSION_COOKIE_SAMESITE = "Lax"

# Host names this app answers to, e.g. ["example.com"]; None accepts any. Other
# hosts get 400, but /health/* answers any: probes send a loopback or pod address.
TRUSTED_HOSTS: list[str] | None = None

# Number of reverse proxies in front (nginx: 1) whose X-Forwarded-For and
# X-Forwarded-Proto headers are trusted. 0 trusts none: a client could fake them.
TRUSTED_PROXIES = 0

# Seconds a readiness check (app/health.py) may take before /health/ready counts
# it as failing; add_check(..., timeout=) sets one check's own.
HEALTH_CHECK_TIMEOUT = 2.0
