"""The HTTP client against a real local server: retries, conditional GETs, bad bodies."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from feeds import FeedFormatError, FeedRejected, FeedUnavailable
from feeds.http import HttpClient, check_body, conditional_headers, is_retryable, retry_delay
from settings import Settings

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
GOOD = json.dumps({"type": "FeatureCollection", "features": []}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: ClassVar[dict[str, int]] = {}
    seen_headers: ClassVar[dict[str, dict[str, str]]] = {}

    def _send(self, status: int, body: bytes, content_type: str = "application/geo+json",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        count = Handler.hits[path] = Handler.hits.get(path, 0) + 1
        Handler.seen_headers[path] = dict(self.headers)
        if path == "/ok":
            self._send(200, GOOD, extra={"ETag": '"v1"'})
        elif path == "/etag":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._send(200, GOOD, extra={"ETag": '"v1"'})
        elif path == "/html":
            self._send(200, b"<!DOCTYPE html><html><body>Service unavailable</body></html>",
                       "text/html")
        elif path == "/html-as-json":
            self._send(200, b"<html><body>maintenance</body></html>", "application/json")
        elif path == "/truncated":
            self._send(200, GOOD[: len(GOOD) // 2])
        elif path == "/short-read":  # promises more bytes than it sends, then closes
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(GOOD) * 10))
            self.end_headers()
            self.wfile.write(GOOD)
            self.close_connection = True
        elif path == "/big":
            self._send(200, b"[" + b"0," * 60_000 + b"0]")
        elif path == "/big-unannounced":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"[" + b"0," * 60_000 + b"0]")
            self.close_connection = True
        elif path == "/flaky":
            if count == 1:
                self._send(500, b"oops", "text/plain")
            else:
                self._send(200, GOOD)
        elif path == "/busy":
            self._send(429, b"slow down", "text/plain", {"Retry-After": "7"})
        elif path == "/gone":
            self._send(404, b"no", "text/plain")
        elif path == "/slow":  # the server is slow, not the test: the client gives up first
            time.sleep(1.5)
            with contextlib.suppress(BrokenPipeError):
                self._send(200, GOOD)
        else:
            self._send(404, b"unknown", "text/plain")

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def client():
    settings = Settings.from_env({}, http_max_bytes=100_000, http_read_timeout_s=0.5,
                                 http_connect_timeout_s=0.5, http_retries=2,
                                 user_agent="MissionWatch-test (ops@example.org)")
    waits: list[float] = []
    http = HttpClient(settings, sleep=waits.append, clock=lambda: NOW)
    http.waits = waits  # type: ignore[attr-defined]
    yield http
    http.close()


def test_fresh_then_not_modified_with_etag(server, client) -> None:
    first = client.get(server + "/etag")
    assert first.status == "fresh"
    assert json.loads(first.body)["type"] == "FeatureCollection"
    assert first.etag == '"v1"'
    second = client.get(server + "/etag", etag=first.etag)
    assert second.status == "not_modified"
    assert second.body == b""
    assert Handler.seen_headers["/etag"]["If-None-Match"] == '"v1"'
    assert Handler.seen_headers["/etag"]["User-Agent"] == "MissionWatch-test (ops@example.org)"


def test_500_then_200_is_retried(server, client) -> None:
    fetched = client.get(server + "/flaky")
    assert fetched.status == "fresh"
    assert Handler.hits["/flaky"] == 2
    assert client.waits == [1.0]


def test_429_honours_retry_after_then_gives_up(server, client) -> None:
    with pytest.raises(FeedUnavailable, match="HTTP 429"):
        client.get(server + "/busy")
    assert client.waits == [7.0, 7.0]
    assert Handler.hits["/busy"] == 3


def test_other_4xx_is_not_retried(server, client) -> None:
    with pytest.raises(FeedRejected, match="HTTP 404"):
        client.get(server + "/gone")
    assert Handler.hits["/gone"] == 1
    assert client.waits == []


@pytest.mark.parametrize(("path", "message"), [
    ("/html", "HTML page"),
    ("/html-as-json", "HTML page"),
    ("/truncated", "does not parse"),
    ("/big", "over the limit"),
    ("/big-unannounced", "over the limit"),
])
def test_bad_bodies_are_format_errors(server, client, path: str, message: str) -> None:
    with pytest.raises(FeedFormatError, match=message):
        client.get(server + path)


def test_connection_broken_midway_is_unavailable(server, client) -> None:
    with pytest.raises(FeedUnavailable, match="broke while reading"):
        client.get(server + "/short-read")


def test_timeout_and_refused_are_unavailable(server, client) -> None:
    with pytest.raises(FeedUnavailable, match="timed out"):
        client.get(server + "/slow")
    with socket.socket() as sock:  # bound, not listening: refused, and no one else gets it
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
        with pytest.raises(FeedUnavailable, match="cannot connect"):
            client.get(f"http://127.0.0.1:{closed_port}/alerts")


def test_policy_is_pure() -> None:
    assert is_retryable(None)
    assert is_retryable(429)
    assert is_retryable(503)
    assert not is_retryable(404)
    assert not is_retryable(200)
    assert retry_delay(1, None, now=NOW) == 1.0
    assert retry_delay(3, None, now=NOW) == 4.0
    assert retry_delay(1, "120", now=NOW) == 60.0
    assert retry_delay(1, "Fri, 27 Nov 2026 12:00:30 GMT", now=NOW) == 30.0
    assert retry_delay(1, "Fri, 27 Nov 2026 11:00:00 GMT", now=NOW) == 0.0
    assert retry_delay(2, "garbage", now=NOW) == 2.0
    with pytest.raises(ValueError, match="timezone-aware"):
        retry_delay(1, None, now=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    assert conditional_headers('"x"', "Thu, 26 Nov 2026 10:00:00 GMT") == {
        "If-None-Match": '"x"', "If-Modified-Since": "Thu, 26 Nov 2026 10:00:00 GMT"}
    assert conditional_headers(None, None) == {}
    check_body(b"\xef\xbb\xbf<rss/>", "text/xml", "xml")
    with pytest.raises(FeedFormatError):
        check_body(b"{}", "application/json", "xml")
    with pytest.raises(FeedFormatError):
        check_body(b"", "application/zip", "binary")
