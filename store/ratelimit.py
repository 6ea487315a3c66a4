"""Rate-limit counters in the store, so every worker process counts the same attempts.

Flask-Limiter (through the ``limits`` package) keeps its counters in a storage backend chosen by
URI. Its in-memory backend counts per process: with four workers an address would get four
times the sign-in attempts the setting allows. :class:`StoreLimits` keeps fixed-window counters
in the ``rate_limits`` table of the app's own store (SQLite or PostgreSQL) instead::

    Limiter(..., storage_uri="missionwatch://", storage_options={"engine": engine})

Each increment is one atomic upsert: a new key, or one whose window has passed, starts again at
``amount`` with a new expiry; otherwise its count grows. Expired rows are deleted now and then.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, ClassVar

import sqlalchemy as sa
from limits.storage import Storage
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from store.tables import rate_limits

SCHEME = "missionwatch"
PRUNE_CHANCE = 0.01  # of increments that also delete every expired row


class StoreLimits(Storage):
    """A ``limits`` storage backend over the ``rate_limits`` table (fixed windows only)."""

    STORAGE_SCHEME: ClassVar[list[str]] = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 engine: Engine | None = None, clock: Callable[[], float] = time.time,
                 **options: Any) -> None:
        if engine is None:
            raise ValueError(f"{SCHEME}:// storage needs storage_options={{'engine': engine}}")
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.engine = engine
        self.clock = clock

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    def _insert(self) -> Any:
        return (postgresql.insert if self.engine.dialect.name == "postgresql"
                else sqlite.insert)(rate_limits)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self.clock()
        table = rate_limits
        insert = self._insert().values(key=key, count=amount, expires_at=now + expiry)
        expired = table.c.expires_at <= now
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"count": sa.case((expired, amount), else_=table.c.count + amount),
                  "expires_at": sa.case((expired, now + expiry), else_=table.c.expires_at)},
        ).returning(table.c.count)
        with self.engine.begin() as connection:
            count = connection.execute(statement).scalar_one()
            if random.random() < PRUNE_CHANCE:
                connection.execute(table.delete().where(expired))
        return int(count)

    def _row(self, key: str) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(rate_limits.c.count, rate_limits.c.expires_at)
                .where(rate_limits.c.key == key)).first()

    def get(self, key: str) -> int:
        row = self._row(key)
        return 0 if row is None or row.expires_at <= self.clock() else int(row.count)

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return self.clock() if row is None else float(row.expires_at)

    def check(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as connection:
            return connection.execute(rate_limits.delete()).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(rate_limits.delete().where(rate_limits.c.key == key))
