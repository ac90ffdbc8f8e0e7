"""Sessions: Flask's signed cookie session, with the key the app is given."""

from flask import session


def add_counter(app):
    def count():
        session["count"] = session.get("count", 0) + 1
        return {"count": session["count"]}

    def peek():
        return {"count": session.get("count")}

    app.add_url_rule("/count", "count", count)
    app.add_url_rule("/peek", "peek", peek)
    return app.test_client()


def test_a_session_lives_across_requests(make_app):
    client = add_counter(make_app())
    assert client.get("/count").json == {"count": 1}
    assert client.get("/count").json == {"count": 2}
    assert client.get("/peek").json == {"count": 2}


def test_a_session_read_without_cookies_is_empty_and_varies(make_app):
    response = add_counter(make_app()).get("/peek")
    assert response.json == {"count": None}
    assert "Set-Cookie" not in response.headers
    assert response.headers["Vary"] == "Cookie"


def test_a_request_that_ignores_the_session_gets_no_cookie(client):
    response = client.get("/health/ping")
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


def test_a_forged_cookie_is_ignored(make_app):
    client = add_counter(make_app())
    client.set_cookie("session", "eyJjb3VudCI6OTl9.forged.signature")
    assert client.get("/peek").json == {"count": None}


def test_clearing_a_session_deletes_the_cookie(make_app):
    app = make_app()

    def logout():
        session.clear()
        return {}

    app.add_url_rule("/logout", "logout", logout)
    client = add_counter(app)
    client.get("/count")
    response = client.get("/logout")
    assert "session=;" in response.headers["Set-Cookie"]
