"""The stored roster: replaced whole in one transaction, read back as DataFrames."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from layers.schema import MISSION_COLUMNS, PERSON_COLUMNS
from store import RosterImportFailed
from store.db import record_audit
from store.tables import missions as missions_table
from store.tables import people as people_table
from store.tables import roster_imports

logger = logging.getLogger(__name__)

CHUNK_ROWS = 5_000
Progress = Callable[[str, int, int], None]


def _records(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    out = frame.loc[:, [*columns, "h3_cell"]]
    return out.to_dict(orient="records")


def replace_roster(
    engine: Engine,
    missions: pd.DataFrame,
    people: pd.DataFrame,
    *,
    source: str,
    actor: str,
    now: datetime,
    synthetic: bool = False,
    skipped_rows: int = 0,
    progress: Progress | None = None,
) -> int:
    """Replace the whole roster in one transaction and return the new import id.

    Any failure (a constraint, a crash, a callback raising) rolls everything back, so the
    previous roster stays exactly as it was.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    total = len(missions) + len(people)
    done = 0
    try:
        with engine.begin() as connection:
            connection.execute(people_table.delete())
            connection.execute(missions_table.delete())
            for table, frame, columns in (
                (missions_table, missions, MISSION_COLUMNS),
                (people_table, people, PERSON_COLUMNS),
            ):
                rows = _records(frame, columns)
                for start in range(0, len(rows), CHUNK_ROWS):
                    chunk = rows[start:start + CHUNK_ROWS]
                    connection.execute(table.insert(), chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress("writing", done, total)
            result = connection.execute(
                roster_imports.insert().values(
                    imported_at=now, actor=actor, source=source, missions=len(missions),
                    people=len(people), skipped_rows=skipped_rows, synthetic=synthetic,
                )
            )
            import_id = int(result.inserted_primary_key[0])
            record_audit(connection, actor, "roster.import", {
                "import_id": import_id, "source": source, "missions": len(missions),
                "people": len(people), "skipped_rows": skipped_rows, "synthetic": synthetic,
            }, now)
    except sa.exc.SQLAlchemyError as exc:
        logger.error("roster write rolled back: %s", type(exc).__name__)
        raise RosterImportFailed(f"the roster was not changed: {exc}") from exc
    logger.info("roster %d stored: %d missions, %d people", import_id, len(missions), len(people))
    return import_id


def load_roster(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(missions, people) as stored, with ``h3_cell``, ordered by id."""
    with engine.connect() as connection:
        missions = pd.read_sql(
            sa.select(missions_table).order_by(missions_table.c.mission_id), connection
        )
        people = pd.read_sql(
            sa.select(people_table).order_by(people_table.c.person_id), connection
        )
    return missions, people


def current_import(engine: Engine) -> dict[str, Any] | None:
    """The latest roster write (its id is the roster's version), or None for an empty store."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(roster_imports).order_by(roster_imports.c.import_id.desc()).limit(1)
        ).mappings().first()
    if row is None:
        return None
    found = dict(row)
    if found["imported_at"].tzinfo is None:  # SQLite keeps no zone; we always write UTC
        found["imported_at"] = found["imported_at"].replace(tzinfo=timezone.utc)
    return found


def roster_is_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        count = sa.select(sa.func.count()).select_from(missions_table)
        return connection.execute(count).scalar_one() == 0
