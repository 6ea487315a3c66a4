"""Hazard feeds: the Hazard model, one HTTP client, one module per source, and the poller.

Exception tree::

    FeedError(Exception)
     ├── FeedUnavailable(FeedError, ConnectionError)   network failure, timeout, 5xx, 429
     ├── FeedRejected(FeedError, PermissionError)      4xx other than 429 (not retried)
     └── FeedFormatError(FeedError, ValueError)        a 200 whose body is not what it claims
                                                       (HTML error page, truncated JSON, too big)

Parsers never raise for one bad item: they skip it and count it (see
:class:`feeds.model.ParseResult`). A whole payload that cannot be parsed raises
:class:`FeedFormatError`, and the poller keeps the last good snapshot.
"""


class FeedError(Exception):
    """Base class of every error raised by :mod:`feeds`."""


class FeedUnavailable(FeedError, ConnectionError):
    """The source could not be reached, timed out, or answered 429/5xx."""


class FeedRejected(FeedError, PermissionError):
    """The source refused the request (4xx other than 429); retrying will not help."""


class FeedFormatError(FeedError, ValueError):
    """The payload is not what the source promises (wrong type, truncated, oversized)."""
