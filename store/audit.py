"""Reading the append-only audit log: filtered queries and a CSV rendering.

Writing is :func:`store.db.record_audit`; the database refuses updates and deletes of
``audit_log`` (triggers from migration 0003).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.tables import audit_log

MAX_EVENTS = 100_000
# Spreadsheets run cells starting with these as formulas; such cells get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    event_id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def query_audit(engine: Engine, *, action: str | None = None, actor: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                limit: int = 1000) -> list[AuditEvent]:
    """Newest first. ``action`` matches exactly or as a prefix (``signin`` finds
    ``signin.ok`` and ``signin.failed``); ``actor`` matches any part, ignoring case."""
    if not 1 <= limit <= MAX_EVENTS:
        raise ValueError(f"limit must be between 1 and {MAX_EVENTS}, got {limit}")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime")
    query = sa.select(audit_log).order_by(audit_log.c.event_id.desc()).limit(limit)
    if action:
        query = query.where(sa.or_(audit_log.c.action == action,
                                   audit_log.c.action.like(_like_escape(action) + ".%",
                                                           escape="\\")))
    if actor:
        query = query.where(audit_log.c.actor.ilike("%" + _like_escape(actor) + "%",
                                                    escape="\\"))
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if until is not None:
        query = query.where(audit_log.c.at < until)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [AuditEvent(event_id=int(r.event_id),
                       at=r.at if r.at.tzinfo else r.at.replace(tzinfo=timezone.utc),
                       actor=r.actor, action=r.action, detail=json.loads(r.detail))
            for r in rows]


def audit_actions(engine: Engine) -> list[str]:
    """Every action that occurs in the log, sorted."""
    with engine.connect() as connection:
        return sorted(connection.execute(sa.select(audit_log.c.action).distinct()).scalars())


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def audit_csv(events: list[AuditEvent]) -> str:
    """The events as CSV (event_id, at, actor, action, detail as JSON), spreadsheet-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["event_id", "at", "actor", "action", "detail"])
    for event in events:
        writer.writerow([event.event_id, event.at.isoformat(), _cell(event.actor),
                         _cell(event.action), _cell(json.dumps(event.detail, sort_keys=True))])
    return out.getvalue()
