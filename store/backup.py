"""Backups of the whole store, and their restore into an empty one (SQLite or PostgreSQL).

A backup is one gzip file of JSON lines: a header (format, schema revision, time, row count
per table), then one line per row, table by table in dependency order. Times are ISO 8601 with
their offset, bytes base64, so a backup from SQLite restores into PostgreSQL and back. It holds
everything but the feed cache (raw payloads, refetched anyway): the roster, users and token
hashes, incident rules, feed snapshots, outreach boards and their history, drills and theirs,
and the audit log. It holds password and token hashes and personal data: it is written with
mode 0600; keep it like the database itself.

Restore goes into an empty store only (a new SQLite file or a new PostgreSQL database,
migrated to the same revision): the outreach and drill histories are append-only, so an
existing store is never overwritten. Everything is inserted in one transaction, the row counts
are checked against the header, and PostgreSQL's id sequences are moved past the restored ids.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from store.db import record_audit
from store.tables import feed_cache, metadata, rate_limits

FORMAT = "missionwatch-backup"
VERSION = 1
SKIPPED = (feed_cache.name,    # a cache of raw payloads: refetched, never restored
           rate_limits.name)   # sign-in counters that expire within the hour
BATCH = 2000


class BackupError(ValueError):
    """A backup that cannot be read or restored here, with the reason."""


def _tables() -> list[sa.Table]:
    return [t for t in metadata.sorted_tables if t.name not in SKIPPED]


def _revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLite hands back the store's UTC times without their offset: say it
        aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return {"$dt": aware.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def _decode(value: Any, column: sa.Column) -> Any:
    if isinstance(value, dict):
        if "$dt" in value:
            parsed = datetime.fromisoformat(value["$dt"])
            if parsed.tzinfo is None and getattr(column.type, "timezone", False):
                raise BackupError(f"{column.table.name}.{column.name}: a time without offset")
            return parsed
        if "$date" in value:
            return date.fromisoformat(value["$date"])
        if "$b64" in value:
            return base64.b64decode(value["$b64"])
    return value


def write_backup(engine: Engine, path: Path, *, actor: str, now: datetime) -> dict[str, Any]:
    """Write the store to ``path`` (gzip JSON lines, mode 0600), read in one transaction so it
    is consistent; audited as ``store.backup`` with the counts and the file's SHA-256.
    Returns the header plus ``sha256`` and ``bytes``.

    The file is written whole under a temporary name in the same folder and renamed: when the
    write fails (an ``OSError``, e.g. a full disk) nothing is left at or next to ``path`` and
    nothing is audited."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    counts: dict[str, int] = {}
    with engine.connect() as connection, connection.begin():
        revision = _revision(connection)
        for table in _tables():
            counts[table.name] = connection.execute(
                sa.select(sa.func.count()).select_from(table)).scalar_one()
        header = {"format": FORMAT, "version": VERSION, "created_at": now.isoformat(),
                  "revision": revision, "dialect": engine.dialect.name, "tables": counts}
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
                    out.write((json.dumps(header, sort_keys=True) + "\n").encode())
                    for table in _tables():
                        order = list(table.primary_key.columns) or list(table.columns)
                        result = connection.execution_options(stream_results=True).execute(
                            sa.select(table).order_by(*order))
                        for row in result.mappings():
                            line = {"t": table.name,
                                    "r": {k: _encode(v) for k, v in row.items()}}
                            out.write((json.dumps(line, sort_keys=True) + "\n").encode())
                raw.flush()
                os.fsync(raw.fileno())   # whole on disk before it takes the backup's name
            os.replace(partial, path)
        except BaseException:
            # a full disk, a write error, an interrupt: no partial file is left behind, and an
            # earlier backup of the same name is kept as it was
            partial.unlink(missing_ok=True)
            raise
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with engine.begin() as connection:
        record_audit(connection, actor, "store.backup",
                     {"file": path.name, "sha256": digest, "tables": counts}, now)
    return {**header, "sha256": digest, "bytes": path.stat().st_size}


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            for number, text in enumerate(stream, start=1):
                try:
                    yield json.loads(text)
                except json.JSONDecodeError as exc:
                    raise BackupError(f"{path}: line {number} is not JSON: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise BackupError(f"{path}: cannot read the backup: {exc}") from exc


def read_header(path: Path) -> dict[str, Any]:
    header = next(_lines(Path(path)), None)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError(f"{path}: not a Mission Watch backup")
    if header.get("version") != VERSION:
        raise BackupError(f"{path}: backup format version {header.get('version')}, this "
                          f"version reads {VERSION}")
    return header


def restore_backup(engine: Engine, path: Path, *, actor: str, now: datetime
                   ) -> dict[str, int]:
    """Restore ``path`` into ``engine``'s store, which must be empty and at the backup's schema
    revision; one transaction; audited as ``store.restore``. Returns rows per table."""
    path = Path(path)
    header = read_header(path)
    tables = {t.name: t for t in _tables()}
    unknown = sorted(set(header["tables"]) - set(tables))
    if unknown:
        raise BackupError(f"{path}: tables this version does not have: {', '.join(unknown)}")
    restored = dict.fromkeys(header["tables"], 0)
    with engine.begin() as connection:
        revision = _revision(connection)
        if revision != header["revision"]:
            raise BackupError(f"{path}: the backup is at schema revision {header['revision']}, "
                              f"this store at {revision}: restore with the same version")
        busy = [name for name, table in tables.items() if connection.execute(
            sa.select(sa.func.count()).select_from(table)).scalar_one()]
        if busy:
            raise BackupError("the store is not empty (rows in " + ", ".join(busy) + "): "
                              "restore into a new SQLite file or a new PostgreSQL database")
        pending: dict[str, list[dict[str, Any]]] = {}
        lines = _lines(path)
        next(lines)
        for item in lines:
            name = item.get("t")
            table = tables.get(name) if isinstance(name, str) else None
            if table is None or not isinstance(item.get("r"), dict):
                raise BackupError(f"{path}: a row of an unknown table {name!r}")
            row = {key: _decode(value, table.c[key]) for key, value in item["r"].items()
                   if key in table.c}
            pending.setdefault(name, []).append(row)
            if len(pending[name]) >= BATCH:
                connection.execute(table.insert(), pending.pop(name))
                restored[name] += BATCH
        for name, rows in pending.items():
            connection.execute(tables[name].insert(), rows)
            restored[name] += len(rows)
        if restored != header["tables"]:
            raise BackupError(f"{path}: rows restored {restored} differ from the header's "
                              f"{header['tables']}: the file is incomplete")
        if connection.dialect.name == "postgresql":
            for table in tables.values():
                for column in table.primary_key.columns:
                    if column.autoincrement is True or (
                            column.autoincrement == "auto"
                            and isinstance(column.type, sa.Integer)):
                        connection.execute(sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', "
                            f"'{column.name}'), COALESCE((SELECT MAX({column.name}) FROM "
                            f"{table.name}), 0) + 1, false) WHERE pg_get_serial_sequence("
                            f"'{table.name}', '{column.name}') IS NOT NULL"))
        record_audit(connection, actor, "store.restore",
                     {"file": path.name, "created_at": header["created_at"],
                      "tables": restored}, now)
    return restored
