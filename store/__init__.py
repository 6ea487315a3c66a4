"""Persistence: SQLite by default (WAL), PostgreSQL through ``DATABASE_URL``.

Exception tree::

    StoreError(Exception)
     ├── StoreUnavailable(StoreError, ConnectionError)   the database cannot be reached/opened
     ├── RosterImportFailed(StoreError, RuntimeError)     a roster write was rolled back
     └── AccountError(StoreError, ValueError)             a bad username, role, password or
                                                          token id, or no such user or token

The store never imports dash or plotly; the roster it keeps is the validated one from
:mod:`layers.locations`.
"""


class StoreError(Exception):
    """Base class of every error raised by :mod:`store`."""


class StoreUnavailable(StoreError, ConnectionError):
    """The database cannot be reached or opened."""


class RosterImportFailed(StoreError, RuntimeError):
    """Writing a roster failed; the transaction was rolled back and the previous roster kept."""


class AccountError(StoreError, ValueError):
    """A user or token request was refused: bad username, role or password, or no such user."""
