"""Incident rules in the store (SQLite and PostgreSQL): defaults, round trip, conflicts, audit,
and all-or-nothing saves."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import store.rules
from layers.incidents import DEFAULT_RULES, IncidentRule, RulesInvalid
from store import StoreError
from store.audit import query_audit
from store.rules import (
    RulesConflict,
    load_rules,
    reset_rules,
    rules_version,
    save_rules,
)
from store.tables import incident_rules

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)
MINE = (
    IncidentRule("include", sources=("nhc",), note="Every NHC product is worked."),
    IncidentRule("exclude", sources=("nws",), events=("Rip Current Statement",),
                 severities=("moderate", "minor"), marine_only=False,
                 note="Beach hazards are for the public, not for missions."),
    *DEFAULT_RULES,
)


def test_an_empty_store_has_the_defaults_as_version_0(store_engine) -> None:
    ruleset = load_rules(store_engine)
    assert ruleset.rules == DEFAULT_RULES
    assert ruleset.version == 0 and ruleset.is_default
    assert ruleset.updated_at is None and ruleset.updated_by is None
    assert rules_version(store_engine) == 0


def test_save_and_load_round_trip_with_versions(store_engine) -> None:
    saved = save_rules(store_engine, MINE, "user:alice", NOW, expected_version=0)
    assert saved.version == 1 and saved.rules == MINE
    loaded = load_rules(store_engine)
    assert loaded == saved
    assert loaded.updated_at == NOW and loaded.updated_at.tzinfo is not None
    assert rules_version(store_engine) == 1
    later = NOW + timedelta(minutes=5)
    again = save_rules(store_engine, MINE[:1], "user:bob", later, expected_version=1)
    assert again.version == 2
    assert load_rules(store_engine).rules == MINE[:1]
    assert load_rules(store_engine).updated_by == "user:bob"
    # an empty list is a list too: every hazard is then an incident
    empty = save_rules(store_engine, (), "user:bob", later)
    assert empty.version == 3
    assert load_rules(store_engine).rules == () and not load_rules(store_engine).is_default
    assert load_rules(store_engine).as_json()["rules"] == []


def test_a_stale_expected_version_is_a_conflict_and_saves_nothing(store_engine) -> None:
    save_rules(store_engine, MINE, "user:alice", NOW, expected_version=0)
    with pytest.raises(RulesConflict) as caught:
        save_rules(store_engine, DEFAULT_RULES[:1], "user:bob", NOW, expected_version=0)
    conflict = caught.value
    assert isinstance(conflict, ValueError) and isinstance(conflict, StoreError)
    assert (conflict.expected, conflict.current, conflict.updated_by) == (0, 1, "user:alice")
    assert "changed by user:alice" in str(conflict) and "nothing was saved" in str(conflict)
    with pytest.raises(RulesConflict):
        reset_rules(store_engine, "user:bob", NOW, expected_version=5)
    assert load_rules(store_engine).rules == MINE
    assert rules_version(store_engine) == 1
    assert [e.action for e in query_audit(store_engine, action="rules")] == ["rules.update"]


def test_a_stale_version_before_the_first_save_is_a_conflict(store_engine) -> None:
    with pytest.raises(RulesConflict):
        save_rules(store_engine, MINE, "user:alice", NOW, expected_version=3)
    assert load_rules(store_engine).is_default


def test_saves_and_resets_are_audited_with_the_rules(store_engine) -> None:
    save_rules(store_engine, MINE, "user:alice", NOW)
    reset = reset_rules(store_engine, "cli:root", NOW + timedelta(minutes=1))
    assert reset.version == 2 and reset.rules == DEFAULT_RULES and not reset.is_default
    events = query_audit(store_engine, action="rules")
    assert [(e.action, e.actor) for e in events] == [("rules.reset", "cli:root"),
                                                     ("rules.update", "user:alice")]
    update = events[1].detail
    assert update["count"] == len(MINE) and update["version"] == 1
    assert [IncidentRule.from_json(r) for r in update["rules"]] == list(MINE)
    assert events[0].detail["count"] == len(DEFAULT_RULES)
    assert load_rules(store_engine).rules == DEFAULT_RULES


def test_a_failing_save_leaves_the_old_rules(store_engine, monkeypatch) -> None:
    save_rules(store_engine, MINE, "user:alice", NOW)

    def broken_audit(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store.rules, "record_audit", broken_audit)
    with pytest.raises(RuntimeError, match="disk full"):
        save_rules(store_engine, DEFAULT_RULES[:2], "user:bob", NOW, expected_version=1)
    monkeypatch.undo()
    loaded = load_rules(store_engine)
    assert loaded.rules == MINE and loaded.version == 1 and loaded.updated_by == "user:alice"
    with store_engine.connect() as connection:
        positions = connection.execute(sa.select(incident_rules.c.position)).scalars().all()
    assert sorted(positions) == list(range(len(MINE)))


def test_bad_arguments_are_refused_before_anything_is_written(store_engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        save_rules(store_engine, MINE, "user:alice", datetime(2026, 11, 29))  # noqa: DTZ001
    with pytest.raises(ValueError, match="rule 2 is a dict"):
        save_rules(store_engine, [MINE[0], MINE[1].to_json()], "user:alice", NOW)
    with pytest.raises(ValueError, match="actor"):
        save_rules(store_engine, MINE, " ", NOW)
    with pytest.raises(ValueError, match="expected_version"):
        save_rules(store_engine, MINE, "user:alice", NOW, expected_version=-1)
    assert rules_version(store_engine) == 0


def test_a_stored_rule_that_no_longer_validates_is_reported(store_engine) -> None:
    save_rules(store_engine, MINE, "user:alice", NOW)
    with store_engine.begin() as connection:
        connection.execute(incident_rules.update().where(incident_rules.c.position == 1)
                           .values(rule='{"action": "exclude", "sources": ["twitter"], '
                                     '"note": "n"}'))
    with pytest.raises(RulesInvalid, match="rule 2: sources must be chosen from"):
        load_rules(store_engine)


def test_two_concurrent_saves_of_one_version_one_wins(store_engine) -> None:
    save_rules(store_engine, MINE, "user:alice", NOW)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def save(actor: str, rules: tuple[IncidentRule, ...]) -> None:
        barrier.wait()
        try:
            outcomes[actor] = save_rules(store_engine, rules, actor, NOW, expected_version=1)
        except RulesConflict as exc:
            outcomes[actor] = exc

    threads = [threading.Thread(target=save, args=("user:bob", MINE[:1])),
               threading.Thread(target=save, args=("user:carol", MINE[1:2]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    conflicts = [a for a, o in outcomes.items() if isinstance(o, RulesConflict)]
    winners = [a for a, o in outcomes.items() if not isinstance(o, RulesConflict)]
    assert len(conflicts) == 1 and len(winners) == 1, outcomes
    loaded = load_rules(store_engine)
    assert loaded.version == 2 and loaded.updated_by == winners[0]
    assert loaded.rules == (MINE[:1] if winners[0] == "user:bob" else MINE[1:2])
    assert len(query_audit(store_engine, action="rules.update")) == 2


@pytest.mark.parametrize("expected_version", [0, None])
def test_two_concurrent_first_saves(store_engine, expected_version) -> None:
    """The version row does not exist yet: with an expected version one save conflicts;
    without one (last writer wins) both are stored, one after the other."""
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def save(actor: str) -> None:
        barrier.wait()
        try:
            outcomes[actor] = save_rules(store_engine, MINE, actor, NOW,
                                         expected_version=expected_version)
        except RulesConflict as exc:
            outcomes[actor] = exc

    threads = [threading.Thread(target=save, args=(actor,)) for actor in ("user:a", "user:b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    conflicts = sum(isinstance(o, RulesConflict) for o in outcomes.values())
    assert len(outcomes) == 2
    assert conflicts == (1 if expected_version == 0 else 0), outcomes
    assert rules_version(store_engine) == 2 - conflicts
