"""Engine creation and migrations: one place that knows SQLite from PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine, make_url

from store import StoreFull, StoreUnavailable
from store.tables import audit_log

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x4D57_0001  # PostgreSQL advisory lock held while migrating ("MW", 1)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


PG_DISK_FULL = "53100"   # SQLSTATE disk_full


def _disk_full(context: sa.engine.ExceptionContext) -> None:
    """Raise :class:`StoreFull` for a write the store's disk has no room for (SQLite's
    SQLITE_FULL, PostgreSQL's disk_full), so every caller sees one clear error, never the
    driver's message with the statement and its parameters (which may hold personal data)."""
    original = context.original_exception
    full = (getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or getattr(original, "sqlstate", None) == PG_DISK_FULL)
    if not full:
        return
    engine = context.engine
    where = (f"the disk holding {engine.url.database}" if engine is not None
             and engine.dialect.name == "sqlite" else "the database server's disk")
    raise StoreFull(f"the store's disk is full ({where}): nothing was written, the data is "
                    "as it was; free some space there and try again") from original


def create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and foreign keys, and its folder is made.
    A write that finds the store's disk full raises :class:`StoreFull`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "handle_error", _disk_full)
        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = sa.create_engine(url, pool_pre_ping=True)
        sa.event.listen(engine, "handle_error", _disk_full)
        return engine
    raise ValueError(
        f"database URL must be sqlite:///PATH or postgresql+psycopg://..., got backend "
        f"{parsed.get_backend_name()!r}"
    )


@contextlib.contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock file next to a SQLite database while it is migrated (processes that
    start together take turns); nothing for an in-memory database."""
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent; safe when processes start
    together: PostgreSQL takes an advisory lock, SQLite a lock file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    sqlite = engine.dialect.name == "sqlite"
    try:
        with _sqlite_migration_lock(engine) if sqlite else contextlib.nullcontext(), \
                engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # several processes may start at once (workers, the poller): one migrates, the
                # others wait for it and then find nothing to do
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except sa.exc.OperationalError as exc:
        raise StoreUnavailable(f"cannot open the store at {safe_url(engine)}: {exc.orig}") from exc


def open_store(url: str) -> Engine:
    """Create the engine for ``url`` and migrate it: the one call the app makes at start-up."""
    engine = create_engine(url)
    migrate(engine)
    return engine


def safe_url(engine: Engine) -> str:
    """The engine's URL with any password masked, fit for logs and error messages."""
    return engine.url.render_as_string(hide_password=True)


def record_audit(
    connection: sa.Connection, actor: str, action: str, detail: dict[str, Any], at: datetime
) -> None:
    """Append one event to the audit log (never updated or deleted)."""
    if at.tzinfo is None:
        raise ValueError("at must be a timezone-aware datetime")
    connection.execute(
        audit_log.insert().values(
            at=at, actor=actor, action=action, detail=json.dumps(detail, sort_keys=True)
        )
    )
