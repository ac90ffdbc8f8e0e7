"""app/errors.py: every HTTP error is JSON with its true status code."""

from flask import abort, request


def test_not_found_is_json(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.content_type == "application/json"
    assert response.json["status"] == 404
    assert response.json["error"] == "Not Found"


def test_method_not_allowed_keeps_the_allow_header(client):
    response = client.post("/health/ping")
    assert response.status_code == 405
    assert response.json["error"] == "Method Not Allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_too_large_body_is_json_413(make_app):
    app = make_app({"MAX_CONTENT_LENGTH": 10})
    app.add_url_rule("/echo", "echo", lambda: request.get_data(), methods=["POST"])
    response = app.test_client().post("/echo", data=b"x" * 11)
    assert response.status_code == 413
    assert response.json["error"] == "Request Entity Too Large"


def test_unhandled_exception_is_a_json_500_that_leaks_nothing(make_app, caplog):
    app = make_app({"PROPAGATE_EXCEPTIONS": False})

    def broken():
        raise RuntimeError("secret detail")

    app.add_url_rule("/broken", "broken", broken)
    response = app.test_client().get("/broken", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json["error"] == "Internal Server Error"
    assert b"secret detail" not in response.data
    assert b"Traceback" not in response.data
    assert response.headers["X-Request-ID"] == "req-500"
    # The traceback goes to the log, with the request id.
    record = next(r for r in caplog.records if r.exc_info)
    assert "secret detail" in caplog.text
    assert record.request_id == "req-500"


def test_non_ascii_text_stays_readable(make_app):
    app = make_app()
    app.add_url_rule("/teapot", "teapot", lambda: abort(400, "参数错误"))
    response = app.test_client().get("/teapot")
    assert response.status_code == 400
    assert "参数错误".encode() in response.data
    assert response.json["message"] == "参数错误"


def test_an_untrusted_host_is_told_which_setting_to_change(make_app):
    client = make_app({"SECRET_KEY": "k", "TRUSTED_HOSTS": ["example.com"]})
    answer = client.test_client().get("/", base_url="http://localhost:5000")
    assert answer.status_code == 400
    assert answer.json["message"] == (
        "Host 'localhost:5000' is not trusted. Add it to TRUSTED_HOSTS to serve it."
    )


def test_debug_is_not_listed_among_the_settings(app):
    result = app.test_cli_runner().invoke(args=["settings"])
    assert result.exit_code == 0, result.output
    assert "  DEBUG = " not in result.output
    assert "  TESTING = " in result.output
