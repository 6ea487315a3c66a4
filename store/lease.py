"""One poller at a time: a lease held for as long as the polling process lives.

Two pollers on one store would poll every feed twice (twice the load on NWS, USGS and the
others, and two writers racing to swap the same snapshots). So a poller first takes the lease:

* PostgreSQL: a session advisory lock, held on a connection of its own. The database lets it go
  when that connection ends — the process exits, is killed, or the database restarts — so a
  dead poller never blocks its successor.
* SQLite (one machine): an exclusive ``flock`` on a file next to the database, which the
  kernel releases when the process ends.

A process that cannot take the lease stands by and tries again; :meth:`PollerLease.held` tells
the holder whether it still has it (after a PostgreSQL restart it does not, and must take it
again before polling on).
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

POLLER_LOCK = 0x4D57_0002  # PostgreSQL advisory lock of the poller ("MW", 2)


class PollerLease:
    """The poller's lease on ``engine``'s store; :meth:`acquire`, :meth:`held`, :meth:`release`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Any = None
        self._file: IO[str] | None = None

    @property
    def _postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def _lock_path(self) -> Path | None:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return None
        return Path(f"{database}.poller.lock")

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this process holds it now."""
        if self.held():
            return True
        self.release()
        if self._postgres:
            try:
                connection = self.engine.connect()
            except sa.exc.SQLAlchemyError as exc:
                logger.warning("poller lease: store unreachable: %s", type(exc).__name__)
                return False
            try:
                taken = connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                           {"key": POLLER_LOCK}).scalar_one()
                connection.commit()
            except sa.exc.SQLAlchemyError as exc:
                connection.invalidate()
                connection.close()
                logger.warning("poller lease: %s", type(exc).__name__)
                return False
            if not taken:
                connection.close()
                return False
            self._connection = connection
            return True
        path = self._lock_path()
        if path is None:
            return True  # an in-memory database belongs to this process alone
        handle = open(path, "a")  # noqa: SIM115 - held open for the lease's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def held(self) -> bool:
        """Whether this process still holds the lease (asks PostgreSQL; no wait)."""
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        try:
            held = self._connection.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                        "pid = pg_backend_pid() AND objid = :key AND granted"),
                {"key": POLLER_LOCK & 0xFFFFFFFF}).scalar_one()
            self._connection.commit()
        except sa.exc.SQLAlchemyError:
            self._drop_connection()
            return False
        if not held:
            self._drop_connection()
        return bool(held)

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except sa.exc.SQLAlchemyError:
                pass

    def release(self) -> None:
        """Give the lease up (closing its connection or file)."""
        if self._connection is not None:
            try:
                self._connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"),
                                         {"key": POLLER_LOCK})
                self._connection.commit()
            except sa.exc.SQLAlchemyError:
                pass
            self._drop_connection()
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None
