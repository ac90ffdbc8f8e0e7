"""app/body.py against a real gunicorn: a body over MAX_CONTENT_LENGTH is 413
however it comes, a malformed chunked one 400, both JSON and no traceback."""

import json
import socket

import pytest

ECHO = """
from flask import request

@app.post("/echo")
def echo():
    return {"length": len(request.get_data())}
"""


@pytest.fixture
def server(site):
    """A server of the copy, with a route that counts the body it gets."""
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write(ECHO)
    result = site.run("start.sh", FLASK_MAX_CONTENT_LENGTH="1000")
    assert result.returncode == 0, result.stderr
    return site


def post(site, head, body, path=b"/echo"):
    """Send a raw POST, the client ending its side after body; return the
    answer's status and JSON body."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as conn:
        conn.sendall(b"POST %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" % path)
        conn.sendall(head + b"\r\n" + body)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    return int(status.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def chunked(size):
    """A body of size bytes, in chunks of at most 300."""
    parts = [b"x" * min(300, size - start) for start in range(0, size, 300)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("size", [999, 1000])
def test_a_body_up_to_the_limit_reaches_the_view(server, size):
    assert post(server, b"Content-Length: %d\r\n" % size, b"x" * size) == (
        200,
        {"length": size},
    )
    head = b"Transfer-Encoding: chunked\r\n"
    assert post(server, head, chunked(size)) == (200, {"length": size})


@pytest.mark.parametrize("chunks", [False, True])
def test_a_body_over_the_limit_is_413(server, chunks):
    if chunks:
        status, body = post(server, b"Transfer-Encoding: chunked\r\n", chunked(1001))
    else:
        status, body = post(server, b"Content-Length: 1001\r\n", b"x" * 1001)
    assert status == 413
    assert body["error"] == "Request Entity Too Large"
    assert len(body["request_id"]) == 32


def test_a_malformed_chunked_body_is_400(server):
    status, body = post(server, b"Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n")
    assert status == 400
    assert body["status"] == 400
    assert "Invalid chunk size" in body["message"]
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: a\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 9000 + b"\r\n", 431),
        (b"GARBAGE\r\n", 400),
    ],
)
def test_what_gunicorn_answers_itself_is_as_the_readme_says(
    server, request_head, status
):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(request_head + b"\r\n")
        first = conn.makefile("rb").readline()
    assert first.split()[1] == str(status).encode()


STREAM = """

@app.post("/stream")
def stream():
    return {"length": len(request.stream.read())}
"""


def test_a_view_that_reads_the_stream_gets_the_whole_body(site):
    with open(site.path / "wsgi.py", "a") as wsgi:
        wsgi.write(ECHO + STREAM)
    assert site.run("start.sh").returncode == 0
    head = b"Transfer-Encoding: chunked\r\n"
    assert post(site, head, chunked(700), path=b"/stream") == (200, {"length": 700})
    head = b"Content-Length: 10\r\n"
    assert post(site, head, b"x" * 10, path=b"/stream") == (200, {"length": 10})


def test_a_body_that_ends_before_its_length_is_400(server):
    status, body = post(server, b"Content-Length: 50\r\n", b"x" * 5)
    assert status == 400
    assert "ended before its Content-Length" in body["message"]
