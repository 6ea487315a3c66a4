"""The contract between the poller and the source modules.

Each source module ``feeds/<name>.py`` exposes ``SOURCE`` (its name in
:data:`feeds.model.SOURCES`), pure ``parse_*`` functions (payload in, :class:`ParseResult` out,
``now`` passed in, no I/O), and one thin ``fetch(ctx) -> ParseResult`` that does the requests
through ``ctx.client`` and hands the bodies to the parsers. A ``fetch`` raises
:class:`feeds.FeedError` subclasses when the source as a whole failed; the poller then keeps
the last good snapshot.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal, Protocol

from settings import Settings


@dataclasses.dataclass(frozen=True)
class Fetched:
    """One HTTP response that passed the checks."""

    status: Literal["fresh", "not_modified"]
    body: bytes                      # empty when not_modified
    url: str
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = ""
    server_date: datetime | None = None  # the server's clock at the answer (Date + Age)


class Client(Protocol):
    """What source modules may ask of the HTTP client (implemented in :mod:`feeds.http`)."""

    def get(
        self, url: str, *, params: dict[str, Any] | None = None,
        expect: Literal["json", "xml", "binary", "any"] = "json",
        etag: str | None = None, last_modified: str | None = None,
    ) -> Fetched:
        """GET with retries (connection errors, 429, 5xx; ``Retry-After`` honoured), a size
        limit, and a check that the body is what ``expect`` says (JSON that parses, XML, ...).
        Sends If-None-Match / If-Modified-Since when ``etag`` / ``last_modified`` are given."""
        ...


class Cache(Protocol):
    """A small persistent key-value cache with ages (zone shapes, GIS products, event pages)."""

    def get(self, key: str, *, max_age_s: float, now: datetime) -> bytes | None:
        """The value stored under ``key`` if it is younger than ``max_age_s`` at ``now``."""
        ...

    def put(self, key: str, value: bytes, *, now: datetime) -> None:
        ...


@dataclasses.dataclass(frozen=True)
class FetchContext:
    """Everything a source's ``fetch`` may use."""

    client: Client
    cache: Cache
    settings: Settings
    now: datetime


class MemoryCache:
    """A :class:`Cache` in memory, for tests and for runs without a store."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[bytes, datetime]] = {}

    def get(self, key: str, *, max_age_s: float, now: datetime) -> bytes | None:
        item = self._items.get(key)
        if item is None or (now - item[1]).total_seconds() > max_age_s:
            return None
        return item[0]

    def put(self, key: str, value: bytes, *, now: datetime) -> None:
        self._items[key] = (value, now)
