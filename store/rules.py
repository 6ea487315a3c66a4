"""Incident rules in the store: the current list, its version, and audited replacement.

The list is replaced as a whole, in one transaction that also bumps the version and writes
the audit event (``rules.update`` or ``rules.reset``, with the count and every rule), so a
failed save leaves the previous rules exactly as they were. A store that never saved rules
uses :data:`layers.incidents.DEFAULT_RULES`, version 0.

Optimistic concurrency: an editor loads a :class:`RuleSet`, edits it, and saves with
``expected_version=ruleset.version``; if someone saved in between, :class:`RulesConflict` is
raised and nothing is written, so two admins never silently overwrite each other. The
version bump is one ``UPDATE ... WHERE version = expected`` (a compare-and-set that the
database serialises), so the check holds on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from layers.incidents import (
    DEFAULT_RULES,
    MAX_RULES,
    IncidentRule,
    rules_from_json,
    rules_to_json,
)
from store import StoreError
from store.db import record_audit
from store.tables import incident_rules, incident_rules_version

logger = logging.getLogger(__name__)

_SINGLETON = 1


class RulesConflict(StoreError, ValueError):
    """The rules changed since the editor loaded them; nothing was saved.

    ``expected`` is the version the editor started from, ``current`` the stored one.
    """

    def __init__(self, expected: int, current: int, updated_by: str | None = None,
                 updated_at: datetime | None = None) -> None:
        self.expected = expected
        self.current = current
        self.updated_by = updated_by
        self.updated_at = updated_at
        who = f" by {updated_by}" if updated_by else ""
        when = f" at {updated_at:%Y-%m-%d %H:%M} UTC" if updated_at else ""
        super().__init__(f"the incident rules were changed{who}{when} (version {current}) "
                         f"after you loaded version {expected}; nothing was saved. Reload "
                         f"them and make your change again.")


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """The rules in force, in order, with their version and who saved them last.

    Version 0 is the built-in defaults (never saved); ``updated_at``/``updated_by`` are then
    None.
    """

    rules: tuple[IncidentRule, ...]
    version: int
    updated_at: datetime | None
    updated_by: str | None

    @property
    def is_default(self) -> bool:
        """Whether these are the built-in defaults, never saved in this store."""
        return self.version == 0

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "updated_by": self.updated_by,
                "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
                "rules": rules_to_json(self.rules)}


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone columns; they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def rules_version(engine: Engine) -> int:
    """The version of the rules in force (0: the defaults); one small query, for cache keys."""
    with engine.connect() as connection:
        version = connection.execute(sa.select(incident_rules_version.c.version).where(
            incident_rules_version.c.singleton == _SINGLETON)).scalar()
    return 0 if version is None else int(version)


def load_rules(engine: Engine) -> RuleSet:
    """The rules in force; the defaults (version 0) when none were ever saved.

    Read in one statement, so the version and the rules always belong together. Raises
    :class:`layers.incidents.RulesInvalid` if a stored rule no longer validates.
    """
    version, rules = incident_rules_version, incident_rules
    query = (sa.select(version.c.version, version.c.updated_at, version.c.updated_by,
                       rules.c.position, rules.c.rule)
             .select_from(version.outerjoin(rules, sa.true()))
             .where(version.c.singleton == _SINGLETON)
             .order_by(rules.c.position))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    if not rows:
        return RuleSet(rules=DEFAULT_RULES, version=0, updated_at=None, updated_by=None)
    first = rows[0]
    stored = [json.loads(row.rule) for row in rows if row.position is not None]
    return RuleSet(rules=rules_from_json(stored), version=int(first.version),
                   updated_at=_aware(first.updated_at), updated_by=first.updated_by)


def _current(connection: sa.Connection) -> Any:
    return connection.execute(sa.select(incident_rules_version).where(
        incident_rules_version.c.singleton == _SINGLETON)).first()


def _bump_version(connection: sa.Connection, expected_version: int | None, actor: str,
                  now: datetime) -> int:
    """Compare-and-set the version row (insert it on the first save); the new version."""
    table = incident_rules_version
    stamp = {"updated_at": now, "updated_by": actor}
    update = (table.update().where(table.c.singleton == _SINGLETON)
              .values(version=table.c.version + 1, **stamp))
    if expected_version is not None:
        update = update.where(table.c.version == expected_version)
    if connection.execute(update).rowcount == 0:
        if expected_version is not None:
            row = _current(connection)
            if row is not None:  # it exists, so the version was not the expected one
                raise RulesConflict(expected_version, int(row.version), row.updated_by,
                                    _aware(row.updated_at))
            if expected_version != 0:
                raise RulesConflict(expected_version, 0)
        # The first save. A concurrent first save makes this insert fail (IntegrityError).
        connection.execute(table.insert().values(singleton=_SINGLETON, version=1, **stamp))
    return int(connection.execute(sa.select(table.c.version).where(
        table.c.singleton == _SINGLETON)).scalar_one())


def _replace(engine: Engine, rules: Sequence[IncidentRule], *, actor: str, now: datetime,
             expected_version: int | None, action: str) -> RuleSet:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
    if not isinstance(actor, str) or not actor.strip():
        raise ValueError("actor must name who saves the rules")
    if expected_version is not None and (
            isinstance(expected_version, bool) or not isinstance(expected_version, int)
            or expected_version < 0):
        raise ValueError(f"expected_version must be a version number (0 or more) or None, "
                         f"got {expected_version!r}")
    rules = tuple(rules)
    for position, rule in enumerate(rules, start=1):
        if not isinstance(rule, IncidentRule):
            raise ValueError(f"rules must be IncidentRule records; rule {position} is a "
                             f"{type(rule).__name__}")
    if len(rules) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} rules, got {len(rules)}")
    as_json = rules_to_json(rules)
    # Without an expected version the save is "last writer wins": losing the race to insert
    # the version row (two first saves at once) is simply tried again, as an update.
    attempts = 1 if expected_version is not None else 3
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                version = _bump_version(connection, expected_version, actor, now)
                connection.execute(incident_rules.delete())
                if as_json:
                    connection.execute(incident_rules.insert(), [
                        {"position": position, "rule": json.dumps(rule, sort_keys=True)}
                        for position, rule in enumerate(as_json)])
                record_audit(connection, actor, action,
                             {"count": len(rules), "version": version, "rules": as_json}, now)
        except sa.exc.IntegrityError:
            if attempt + 1 < attempts:
                continue
            current = load_rules(engine)
            raise RulesConflict(expected_version or 0, current.version, current.updated_by,
                                current.updated_at) from None
        break
    logger.info("%s: incident rules version %d, %d rule(s)", action, version, len(rules))
    return RuleSet(rules=rules, version=version, updated_at=now, updated_by=actor)


def save_rules(engine: Engine, rules: Sequence[IncidentRule], actor: str, now: datetime, *,
               expected_version: int | None = None) -> RuleSet:
    """Replace the whole list of rules (audited ``rules.update``); the new :class:`RuleSet`.

    With ``expected_version`` (the version the editor loaded) a save made by someone else in
    between raises :class:`RulesConflict` and nothing is written.
    """
    return _replace(engine, rules, actor=actor, now=now, expected_version=expected_version,
                    action="rules.update")


def reset_rules(engine: Engine, actor: str, now: datetime, *,
                expected_version: int | None = None) -> RuleSet:
    """Store the built-in defaults as the rules (audited ``rules.reset``), as a new version."""
    return _replace(engine, DEFAULT_RULES, actor=actor, now=now,
                    expected_version=expected_version, action="rules.reset")
