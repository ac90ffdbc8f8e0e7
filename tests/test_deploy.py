"""deploy/: the nginx site file and the logrotate snippet, run for real, the
systemd units, checked by systemd-analyze (tests/test_systemd.py runs them),
and the Containerfile, checked by hadolint (tests/test_container.py builds it).

Skipped, with the reason, where nginx, logrotate or systemd is not installed;
.ci/run installs them. Only 127.0.0.1, bounded waits, everything stopped at the end.
"""

import grp
import http.client
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

DEPLOY = os.path.join(os.path.dirname(os.path.dirname(__file__)), "deploy")

NGINX_MAIN = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""


# The test's own self-signed certificate: trust it without checking.
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def fetch(port, headers=None, tls=False):
    """GET /health/ping on 127.0.0.1:port, by HTTPS when tls is true;
    return (status, headers, body)."""
    if tls:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=5, context=TLS
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/health/ping", headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def read_recipe(name):
    """Return the text of deploy/name."""
    with open(os.path.join(DEPLOY, name)) as recipe:
        return recipe.read()


def user_and_group():
    """Return the names of the user and group running the tests."""
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def replace_once(text, old, new):
    """Replace old, which must occur exactly once (the recipe changed otherwise)."""
    assert text.count(old) == 1, f"{old!r} should occur once in the recipe"
    return text.replace(old, new)


@pytest.fixture
def two_instances(site, free_port):
    """The site started on two ports; both stopped at the end."""
    ports = [site.port, free_port()]
    for port in ports:
        result = site.run("start.sh", PORT=str(port))
        assert result.returncode == 0, result.stderr
    return site, ports


@pytest.fixture
def nginx(tmp_path, two_instances, free_port):
    """nginx running the shipped site file in front of the two instances."""
    if not shutil.which("nginx"):
        pytest.skip("nginx is not installed (apt-get install nginx)")
    site, ports = two_instances
    tmp = tmp_path / "nginx"
    tmp.mkdir()
    os.chmod(tmp, 0o777)  # nginx's workers may run as another user
    listen, plain = free_port(), free_port()
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    conf = read_recipe("nginx-site.conf")
    conf = replace_once(conf, "server 127.0.0.1:5000 ", f"server 127.0.0.1:{ports[0]} ")
    conf = replace_once(conf, "server 127.0.0.1:5001 ", f"server 127.0.0.1:{ports[1]} ")
    conf = replace_once(conf, "listen 80;", f"listen 127.0.0.1:{plain};")
    conf = replace_once(conf, "listen 443 ssl", f"listen 127.0.0.1:{listen} ssl")
    conf = replace_once(conf, "/etc/ssl/certs/myapp.pem", str(cert))
    conf = replace_once(conf, "/etc/ssl/private/myapp.key", str(key))
    (tmp / "site.conf").write_text(conf)
    (tmp / "nginx.conf").write_text(NGINX_MAIN.format(tmp=tmp))
    server = subprocess.Popen(
        ["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if fetch(listen, tls=True)[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read().decode()
            assert time.monotonic() < deadline, "nginx did not answer within 10 s"
            time.sleep(0.05)
        site.plain_port = plain
        yield site, ports, listen
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_nginx_spreads_requests_over_both_instances(nginx):
    site, ports, listen = nginx
    for _ in range(40):
        assert fetch(listen, tls=True)[0] == 200
    for port in ports:
        assert "GET /health/ping" in site.log(port)


def test_nginx_fails_over_when_an_instance_stops(nginx):
    site, ports, listen = nginx
    assert site.run("stop.sh", PORT=str(ports[1])).returncode == 0
    statuses = [fetch(listen, tls=True)[0] for _ in range(50)]
    assert statuses == [200] * 50


def test_nginx_shields_workers_from_slow_clients(nginx):
    site, ports, listen = nginx
    stalled = []
    try:
        for _ in range(100):
            raw = socket.create_connection(("127.0.0.1", listen), timeout=5)
            client = TLS.wrap_socket(raw)
            client.sendall(b"GET /health/ping HTTP/1.1\r\nHost: slow\r\n")
            stalled.append(client)
        began = time.monotonic()
        assert fetch(listen, tls=True)[0] == 200
        assert time.monotonic() - began < 1
    finally:
        for client in stalled:
            client.close()


def test_nginx_serves_https_with_its_headers_and_redirects_http(nginx):
    site, ports, listen = nginx
    status, headers, _ = fetch(listen, tls=True)
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=63072000"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    raw = socket.create_connection(("127.0.0.1", listen), timeout=5)
    with TLS.wrap_socket(raw) as conn:
        assert conn.version() in ("TLSv1.2", "TLSv1.3")
    status, headers, _ = fetch(site.plain_port)
    assert status == 301
    assert headers["Location"] == "https://127.0.0.1/health/ping"


def test_nginx_passes_the_clients_request_id_or_makes_one(nginx):
    site, ports, listen = nginx
    status, headers, _ = fetch(listen, {"X-Request-ID": "client-id-7"}, tls=True)
    assert (status, headers["X-Request-ID"]) == (200, "client-id-7")
    made = fetch(listen, tls=True)[1]["X-Request-ID"]
    assert len(made) == 32 and made != "client-id-7"
    access = site.log(ports[0]) + site.log(ports[1])
    assert "client-id-7" in access


def test_logrotate_loses_no_line_and_gunicorn_reopens(tmp_path, started):
    if not shutil.which("logrotate"):
        pytest.skip("logrotate is not installed (apt-get install logrotate)")
    site = started
    conf = read_recipe("logrotate.conf")
    user, group = user_and_group()
    conf = replace_once(conf, "su myapp myapp", f"su {user} {group}")
    conf = replace_once(conf, "runuser -u myapp", f"runuser -u {user}")
    conf = replace_once(conf, '"/srv/myapp/venv/bin/python"', f'"{sys.executable}"')
    conf = conf.replace("/srv/myapp", str(site.path))
    (tmp_path / "logrotate.conf").write_text(conf)
    rotate = [
        "logrotate",
        "-f",
        "-s",
        str(tmp_path / "state"),
        str(tmp_path / "logrotate.conf"),
    ]

    sent, failed = [], []

    def load():
        for number in range(400):
            request_id = f"rot-{number}"
            if fetch(site.port, {"X-Request-ID": request_id})[0] == 200:
                sent.append(request_id)
            else:
                failed.append(request_id)

    client = threading.Thread(target=load)
    client.start()
    time.sleep(0.2)
    result = subprocess.run(rotate, capture_output=True, text=True, timeout=60)
    client.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert failed == [] and len(sent) == 400

    access = site.path / "logs" / f"app-{site.port}.log"
    rotated = site.path / "logs" / f"app-{site.port}.log.1"
    assert rotated.exists()
    # After USR1 new lines go to the fresh file.
    deadline = time.monotonic() + 5
    while not access.exists() or "after-rotation" not in access.read_text():
        assert time.monotonic() < deadline, "gunicorn did not reopen its access log"
        fetch(site.port, {"X-Request-ID": "after-rotation"})
        time.sleep(0.1)
    lines = (rotated.read_text() + access.read_text()).splitlines()
    logged = [
        re.search(r"\[(rot-\d+)\] gunicorn.access", line)[1]
        for line in lines
        if "[rot-" in line
    ]
    assert sorted(logged) == sorted(sent), "access log lines were lost or doubled"


def test_systemd_unit_passes_systemd_analyze(tmp_path, project):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    unit = read_recipe("myapp@.service")
    user, group = user_and_group()
    unit = replace_once(unit, "User=myapp", f"User={user}")
    unit = replace_once(unit, "Group=myapp", f"Group={group}")
    unit = unit.replace("/srv/myapp/venv", sys.prefix)
    unit = unit.replace("/srv/myapp", str(project))
    (tmp_path / "myapp@.service").write_text(unit)
    (tmp_path / "myapp@.socket").write_text(read_recipe("myapp@.socket"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "myapp@5000.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "myapp@" not in result.stderr, result.stderr


def test_the_containerfile_is_hadolint_clean(tmp_path):
    hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
    result = subprocess.run(
        [hadolint, os.path.join(DEPLOY, "Containerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # It can fail: a root user at the end is one of its findings.
    rooted = tmp_path / "Containerfile"
    rooted.write_text(read_recipe("Containerfile") + "USER root\n")
    assert subprocess.run([hadolint, str(rooted)], capture_output=True).returncode
