"""Flask's signed cookie session, at no cost to requests that send no cookie.

Flask builds its cookie signer on every request and finds the Cookie header by
walking every request header: about 20 µs of the 80 µs the ping view took
(bench/in_process.py). API clients,
health checks and load balancers send no cookies, so that work is skipped for
them. Requests with cookies, and every session that is used, take Flask's path
unchanged.
"""

from flask.sessions import SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's default session interface, skipped when there is nothing to do."""

    def open_session(self, app, request):
        """Give a request without cookies a new empty session, as Flask would."""
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        """Save only a session that holds data or was read or changed."""
        if session or session.accessed or session.modified:
            super().save_session(app, session, response)
