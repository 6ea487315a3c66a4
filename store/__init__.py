"""Persistence: SQLite by default (WAL), PostgreSQL through ``DATABASE_URL``.

Exception tree::

    StoreError(Exception)
     ├── StoreUnavailable(StoreError, ConnectionError)   the database cannot be reached/opened
     ├── RosterImportFailed(StoreError, RuntimeError)     a roster write was rolled back
     ├── StoreFull(StoreError, RuntimeError)              the store's disk is full: the write
     │                                                    was rolled back, nothing written
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


class StoreFull(StoreError, RuntimeError):
    """The store's disk (SQLite's folder, or the PostgreSQL server's) has no room for a write:
    the transaction was rolled back and the data is as it was. Raised for every write, instead
    of the driver's error, by the engines :func:`store.db.create_engine` makes."""


class AccountError(StoreError, ValueError):
    """A user or token request was refused: bad username, role or password, or no such user."""
