"""A real local HTTP server for the feed tests: answers by path, counts and records requests.

``LocalServer`` listens on 127.0.0.1 on a free port and serves from a thread. Each route maps a
path (query string left off) to an answer ``(status, content_type, body)`` or
``(status, content_type, body, headers)``, or to a callable returning one. The callable gets the
parsed query (``parse_qs``) and, if it takes a second argument, the request headers. Paths
without a route get ``not_found``. Use it as a context manager or through the ``local_server``
fixture (registered for the feed tests in ``conftest.py``)::

    with LocalServer() as server:
        server.routes["/feed.json"] = (200, "application/json", b"[]")
        ...  # fetch server.base + "/feed.json"
        assert server.hits["/feed.json"] == 1
"""

from __future__ import annotations

import collections
import inspect
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import pytest

Query = dict[str, list[str]]
Answer = tuple[int, str, bytes] | tuple[int, str, bytes, Mapping[str, str]]
Route = Answer | Callable[[Query], Answer] | Callable[[Query, HTTPMessage], Answer]

NOT_FOUND: Answer = (404, "text/plain", b"not found")


def _takes_headers(route: Callable[..., Answer]) -> bool:
    try:
        inspect.signature(route).bind(None, None)
    except TypeError:
        return False
    return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # every answer has a Content-Length: connections are kept
    server: _HTTPServer

    def do_GET(self) -> None:
        local = self.server.local
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with local.lock:
            local.hits[parts.path] += 1
            local.queries.append(query)
            local.headers.append(self.headers)
        route = local.routes.get(parts.path, local.not_found)
        if callable(route):
            route = route(query, self.headers) if _takes_headers(route) else route(query)
        status, content_type, body, *extra = route
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra[0] if extra else {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests count requests instead."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, local: LocalServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.local = local

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up early (a refused 404, a retried 500) are not test failures;
        anything else (a route that raised) is kept, and raised when the server stops."""
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, ConnectionError):
            with self.local.lock:
                self.local.errors.append(error)


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 with routes by path, hit counts and request log.

    ``hits`` counts requests by path; ``queries`` and ``headers`` hold each request's parsed
    query and headers, in arrival order. A route that raises drops that connection, and the
    error is raised again when the server stops, so that a broken route fails its test.
    """

    def __init__(self, *, not_found: Route = NOT_FOUND, poll_interval: float = 0.01) -> None:
        self.routes: dict[str, Route] = {}
        self.not_found = not_found
        self.hits: collections.Counter[str] = collections.Counter()
        self.queries: list[Query] = []
        self.headers: list[HTTPMessage] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self._poll_interval = poll_interval
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> LocalServer:
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": self._poll_interval},
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; raise the first error a route raised, if any."""
        if self._httpd is not None and self._thread is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
        self._httpd = self._thread = None
        if self.errors:
            raise RuntimeError("a route of the local test server raised") from self.errors[0]

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A running ``LocalServer``, stopped after the test."""
    with LocalServer() as server:
        yield server
