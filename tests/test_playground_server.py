"""The playground server: an idle connection blocks no one, HEAD is answered, loopback only.

Network: 127.0.0.1 only (an ephemeral port).
"""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from anyconv.viz.playground import playground_html, serve_in_thread

ANSWER_WITHIN_S = 2.0


@pytest.fixture
def server():
    srv, url = serve_in_thread(0, timeout=3.0)
    idle = []
    yield srv, url, idle
    for s in idle:  # close idle clients first: a single-threaded server would never return from them
        s.close()
    srv.shutdown()
    srv.server_close()


def _idle_connection(srv, idle: list) -> socket.socket:
    s = socket.create_connection(srv.server_address[:2], timeout=5)
    idle.append(s)
    s.sendall(b"GET / HT")  # a partial request line, then silence
    return s


def _request(srv, method: str, path: str = "/") -> tuple[int, dict, bytes, float]:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=ANSWER_WITHIN_S)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read(), time.perf_counter() - t0
    finally:
        conn.close()


def test_idle_connections_do_not_block_get_and_head(server):
    srv, url, idle = server
    for _ in range(3):
        _idle_connection(srv, idle)
    page = playground_html().encode("utf-8")
    status, headers, body, took = _request(srv, "GET")
    assert status == 200 and body == page and took < ANSWER_WITHIN_S
    assert headers["Content-Type"].startswith("text/html") and int(headers["Content-Length"]) == len(page)
    status, headers, body, took = _request(srv, "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(page) and took < ANSWER_WITHIN_S


def test_an_idle_connection_is_closed_after_the_timeout(server):
    srv, url, idle = server
    s = _idle_connection(srv, idle)
    t0 = time.perf_counter()
    s.settimeout(10)
    try:
        rest = s.recv(4096)  # b"" (closed) or an error answer, then closed
    except ConnectionResetError:
        rest = b""
    assert time.perf_counter() - t0 < 6 and not rest.startswith(b"HTTP/1.1 200"), rest


def test_only_the_page_on_loopback(server):
    srv, url, idle = server
    assert srv.server_address[0] == "127.0.0.1" and url.startswith("http://127.0.0.1:")
    for method in ("GET", "HEAD"):
        assert _request(srv, method, "/../../etc/passwd")[0] == 404
        assert _request(srv, method, "/secret.txt")[0] == 404
    assert _request(srv, "POST")[0] == 501
