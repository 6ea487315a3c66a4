"""The one HTTP client of the feeds: a pure policy, and a thin shell around requests.

Policy (pure, unit-tested): which failures to retry (connection errors, timeouts, 429 and 5xx;
never another 4xx), how long to wait (``Retry-After`` honoured, capped; else exponential
backoff), which conditional headers to send (ETag, Last-Modified), and whether a 200 body is
what it claims (an HTML error page served with status 200 is a failure, so is truncated JSON
or a body over the size limit). The shell owns the ``requests.Session``, the timeouts and the
``User-Agent`` that api.weather.gov requires.

The size limit (``http_max_bytes``) holds for every body, whatever the server says: a declared
``Content-Length`` over it is refused before any of the body is read; otherwise the body is
streamed in 64 KiB pieces and the connection dropped as soon as the *decoded* bytes pass the
limit (a gzip "bomb" small on the wire counts at its decoded size). urllib3 2.7+ decodes at
most what each read asks for, so no more than the limit plus one piece is ever held.
Redirects (at most :data:`MAX_REDIRECTS`) are followed here, not by requests, which reads a
redirect's whole body, unlimited, before following it (even with ``allow_redirects=False``);
here that body is never read.
Every answer carries the server's clock (``Date`` plus ``Age``) for :mod:`feeds.clock`.
"""

from __future__ import annotations

import email.utils
import io
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urljoin

import requests

from feeds import FeedFormatError, FeedRejected, FeedUnavailable
from feeds.base import Fetched
from feeds.clock import server_time
from settings import Settings

logger = logging.getLogger(__name__)

Expect = Literal["json", "xml", "binary", "any"]
MAX_RETRY_AFTER_S = 60.0
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
_LIMIT_SETTING = "MISSIONWATCH_HTTP_MAX_BYTES"

# --------------------------------------------------------------------------- the policy


def is_retryable(status: int | None) -> bool:
    """Retry connection failures (``None``), 429 and 5xx; never another 4xx."""
    return status is None or status == 429 or 500 <= status <= 599


def retry_delay(
    attempt: int, retry_after: str | None, *, now: datetime, backoff_s: float = 1.0
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    ``Retry-After`` (seconds or an HTTP date) wins when given, capped at
    :data:`MAX_RETRY_AFTER_S`; otherwise ``backoff_s * 2 ** (attempt - 1)``.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    if retry_after:
        text = retry_after.strip()
        if text.isdigit():
            return min(float(text), MAX_RETRY_AFTER_S)
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER_S)
    return min(backoff_s * 2 ** (attempt - 1), MAX_RETRY_AFTER_S)


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for a conditional GET."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def check_body(body: bytes, content_type: str, expect: Expect) -> None:
    """Raise :class:`FeedFormatError` unless ``body`` is what ``expect`` says."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if expect != "any" and (kind == "text/html" or _looks_like_html(body)):
        raise FeedFormatError(f"expected {expect}, got an HTML page ({len(body)} bytes)")
    if expect == "json":
        try:
            json.loads(body.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise FeedFormatError(f"JSON body is not UTF-8: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise FeedFormatError(f"JSON body does not parse ({len(body)} bytes): {exc}") from exc
    elif expect == "xml":
        if not body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            raise FeedFormatError(f"expected XML, got {body[:40]!r}")
    elif expect == "binary" and not body:
        raise FeedFormatError("expected a file, got an empty body")


# --------------------------------------------------------------------------- the shell


class _Session(requests.Session):
    """A session that never follows redirects itself (so never reads a redirect's body)."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


class HttpClient:
    """GETs with the policy above; implements :class:`feeds.base.Client`.

    A ``session`` given must be a :class:`requests.Session` that does not follow redirects
    itself (``get_redirect_target`` returning None), or redirect bodies escape the limit.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        backoff_s: float = 1.0,
    ) -> None:
        self.timeout = (settings.http_connect_timeout_s, settings.http_read_timeout_s)
        self.retries = settings.http_retries
        self.max_bytes = settings.http_max_bytes
        self.session = session or _Session()
        self.session.headers["User-Agent"] = settings.user_agent
        self.sleep = sleep
        self.clock = clock
        self.backoff_s = backoff_s
        self.requests_sent = 0

    def close(self) -> None:
        self.session.close()

    def get(
        self, url: str, *, params: dict[str, Any] | None = None, expect: Expect = "json",
        etag: str | None = None, last_modified: str | None = None,
    ) -> Fetched:
        """One GET, retried per the policy; see :class:`feeds.base.Client`."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http(s), got {url!r}")
        headers = conditional_headers(etag, last_modified)
        headers["Accept"] = {
            "json": "application/geo+json, application/json;q=0.9, */*;q=0.1",
            "xml": "application/xml, text/xml, application/atom+xml, */*;q=0.1",
        }.get(expect, "*/*")
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            retry_after: str | None = None
            try:
                fetched = self._once(url, params, headers, expect)
            except _Retryable as exc:
                status, retry_after, reason = exc.status, exc.retry_after, str(exc)
            else:
                return fetched
            if attempt > self.retries or not is_retryable(status):
                raise FeedUnavailable(f"{_short(url)}: {reason} (after {attempt} attempt(s))")
            delay = retry_delay(attempt, retry_after, now=self.clock(), backoff_s=self.backoff_s)
            logger.warning("GET %s failed (%s); retry %d in %.1f s", _short(url), reason,
                           attempt, delay)
            self.sleep(delay)

    def _once(self, url: str, params: dict[str, Any] | None, headers: dict[str, str],
              expect: Expect) -> Fetched:
        self.requests_sent += 1
        try:
            response = self._follow(url, params, headers)
        except requests.Timeout as exc:
            raise _Retryable(None, None, f"timed out: {type(exc).__name__}") from exc
        except requests.ConnectionError as exc:
            raise _Retryable(None, None, f"cannot connect: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            raise _Retryable(None, None, f"request failed: {type(exc).__name__}") from exc
        with response:
            status = response.status_code
            server_date = server_time(response.headers.get("Date"),
                                      response.headers.get("Age"))
            if status == 304:
                return Fetched("not_modified", b"", response.url,
                               response.headers.get("ETag"),
                               response.headers.get("Last-Modified"), server_date=server_date)
            if is_retryable(status):
                raise _Retryable(status, response.headers.get("Retry-After"), f"HTTP {status}")
            if status >= 400:
                raise FeedRejected(f"{_short(url)}: HTTP {status}; not retried")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise FeedFormatError(
                    f"{_short(url)}: body of {int(declared):,} bytes is over the limit of "
                    f"{self.max_bytes:,} bytes ({_LIMIT_SETTING}); not downloaded")
            body = self._read_limited(response, url)
            content_type = response.headers.get("Content-Type", "")
            try:
                check_body(body, content_type, expect)
            except FeedFormatError as exc:
                raise FeedFormatError(f"{_short(url)}: {exc}") from exc
            return Fetched("fresh", body, response.url, response.headers.get("ETag"),
                           response.headers.get("Last-Modified"), content_type,
                           server_date=server_date)

    def _follow(self, url: str, params: dict[str, Any] | None,
                headers: dict[str, str]) -> requests.Response:
        """The GET's response after up to MAX_REDIRECTS redirects, each closed unread."""
        for _hop in range(MAX_REDIRECTS + 1):
            response = self.session.get(url, params=params, headers=headers,
                                        timeout=self.timeout, stream=True,
                                        allow_redirects=False)
            if not response.is_redirect:
                return response
            url = urljoin(response.url, response.headers["Location"])
            params = None  # the new location carries its own query
            response.close()  # drops the connection: a redirect's body is never read
        raise FeedRejected(f"{_short(url)}: more than {MAX_REDIRECTS} redirects; not retried")

    def _read_limited(self, response: requests.Response, url: str) -> bytes:
        """The decoded body, read in pieces; FeedFormatError once it passes the limit (the
        caller's ``with response`` then drops the connection: the rest is never fetched)."""
        buffer = io.BytesIO()  # one growing buffer: getvalue() shares it, no second copy
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    encoding = response.headers.get("Content-Encoding", "").strip().lower()
                    decoded = f" once decoded ({encoding})" if encoding not in (
                        "", "identity") else ""
                    raise FeedFormatError(
                        f"{_short(url)}: body over the limit of {self.max_bytes:,} bytes"
                        f"{decoded} ({_LIMIT_SETTING}); download stopped")
                buffer.write(chunk)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retryable(None, None, f"connection broke while reading: "
                                         f"{type(exc).__name__}") from exc
        return buffer.getvalue()


class _Retryable(Exception):
    def __init__(self, status: int | None, retry_after: str | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


def _short(url: str) -> str:
    """The URL without its query string, for logs and messages."""
    return url.split("?", 1)[0]
