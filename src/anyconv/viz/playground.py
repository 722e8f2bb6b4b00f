"""The offline playground: one self-contained HTML page shipped inside the package.

The page (``playground.html``: inline CSS and plain JavaScript, no network) lets a user set
input size, kernel size, stride, padding (every form), dilation and transposed or not, and
shows the output shape with the formula filled in, the sliding window step by step and the
operator matrix. Its arithmetic is exposed as ``window.anyconvShape(params)`` and
``window.anyconvMatrix(params)``; the tests check them against :mod:`anyconv.core.shapes` and the
front door in headless Chromium.
"""

from __future__ import annotations

import http.server
import os
import threading
from importlib import resources
from pathlib import Path


def playground_html() -> str:
    """The playground page as one HTML string (no external resources).

    Examples:
        >>> page = playground_html()
        >>> page.startswith("<!DOCTYPE html>") and "window.anyconvShape" in page
        True
        >>> any(s in page for s in ("http://", "https://", "<link", "src="))
        False
    """
    return resources.files("anyconv.viz").joinpath("playground.html").read_text(encoding="utf-8")


def write_playground(path: str | os.PathLike[str]) -> Path:
    """Write the playground page to ``path`` and return it."""
    out = Path(path)
    out.write_text(playground_html(), encoding="utf-8")
    return out


# seconds a connection may stay silent (while its request is read or its answer written)
TIMEOUT = 5.0
PATHS = ("/", "/index.html", "/playground.html")


def make_server(port: int = 0, timeout: float = TIMEOUT) -> http.server.ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 that serves the page at ``/`` (``port=0``: any free port).

    Each connection is handled in its own daemon thread and is closed after ``timeout``
    seconds of silence, so an idle or slow client cannot block the others. GET and HEAD are
    answered; any other path than ``/`` (``/index.html``, ``/playground.html``) is a 404.
    """
    page = playground_html().encode("utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _head(self) -> bool:
            if self.path.split("?")[0] not in PATHS:
                self.send_error(404, "only / is served")
                return False
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            return True

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self._head():
                self.wfile.write(page)

        def do_HEAD(self) -> None:  # noqa: N802
            self._head()

        def log_message(self, format: str, *args: object) -> None:
            pass

    Handler.timeout = timeout  # socket timeout of every connection (StreamRequestHandler)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def serve_in_thread(port: int = 0, timeout: float = TIMEOUT) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start :func:`make_server` in a daemon thread; return the server and its URL."""
    server = make_server(port, timeout)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, actual = server.server_address[:2]
    return server, f"http://{host!s}:{actual}/"
