"""The application factory: create_app() builds the app, step by step.

The app's modules are imported inside create_app, as in Flask's tutorial:
gunicorn.conf.py names app/log.py, and importing it must not import every
blueprint (a broken one would then stop gunicorn before it logs why).
"""

from flask import Flask


def create_app(test_config=None, instance_path=None, env_file=None):
    """Create and configure the app.

    test_config overrides every other settings layer; instance_path and env_file
    let tests use their own instance folder and .env instead of the project's.
    """
    from flask.json.provider import DefaultJSONProvider
    from werkzeug.middleware.proxy_fix import ProxyFix

    from app import body, commands, errors, health, request_id
    from app.config import ensure_secret_key, load_config
    from app.log import init_logging

    init_logging()
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    app.request_class = health.Request  # health probes skip host checking
    load_config(app, test_config, env_file)
    ensure_secret_key(app)
    app.json = json = DefaultJSONProvider(app)
    json.ensure_ascii = False  # keep Chinese (and all non-ASCII) readable

    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Flask's documented way to wrap it, which mypy takes for a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies
        )

    request_id.init_app(app)
    errors.init_app(app)
    body.init_app(app)
    commands.init_app(app)
    health.init_app(app)
    return app
