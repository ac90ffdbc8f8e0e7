"""app/request_id.py: one id per request, kept from the client when sane."""

import logging

import pytest

from app import request_id


def test_a_sane_client_id_is_kept(client):
    response = client.get("/health/ping", headers={"X-Request-ID": "abc-123.x:y_z"})
    assert response.headers["X-Request-ID"] == "abc-123.x:y_z"


def test_a_missing_id_is_generated(client):
    first = client.get("/health/ping").headers["X-Request-ID"]
    second = client.get("/health/ping").headers["X-Request-ID"]
    assert len(first) == 32
    assert first != second


@pytest.mark.parametrize(
    "unsafe", ["", "has space", "x" * 129, "new\\nline", "<script>", "ünïcode"]
)
def test_an_unsafe_client_id_is_replaced(client, unsafe):
    response = client.get("/health/ping", headers={"X-Request-ID": unsafe})
    assert response.headers["X-Request-ID"] != unsafe
    assert len(response.headers["X-Request-ID"]) == 32


def test_the_id_is_in_the_view_and_in_log_lines(make_app, caplog):
    app = make_app()

    def view():
        logging.getLogger("any.library").warning("inside the request")
        return {"id": request_id.current_id()}

    app.add_url_rule("/view", "view", view)
    response = app.test_client().get("/view", headers={"X-Request-ID": "trace-1"})
    assert response.json == {"id": "trace-1"}
    record = next(r for r in caplog.records if r.getMessage() == "inside the request")
    assert record.request_id == "trace-1"


def test_an_error_response_carries_the_id_too(client):
    response = client.get("/no/such/page", headers={"X-Request-ID": "lost-1"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "lost-1"


def test_outside_a_request_the_id_is_a_dash(app):
    assert request_id.current_id() == "-"
    with app.app_context():
        assert request_id.current_id() == "-"
