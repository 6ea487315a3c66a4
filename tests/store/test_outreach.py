"""Outreach store: boards, append-only history, conflicts, idempotent retries, concurrency."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from store.audit import query_audit
from store.outreach import (
    BoardNotFound,
    OutreachConflict,
    add_targets,
    board_version,
    close_board,
    first_seen,
    get_board,
    history,
    latest_statuses,
    list_boards,
    open_board,
    record_status,
)
from store.tables import outreach_events

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)


def test_one_open_board_per_selection_and_mode(store_engine) -> None:
    board, created = open_board(store_engine, ["nws:a", "nws:b"], name="Flood", actor="u:a",
                                now=NOW)
    assert created and board.hazard_ids == ("nws:a", "nws:b")
    again, created = open_board(store_engine, ["nws:b", "nws:a"], name="x", actor="u:b",
                                now=NOW)
    assert not created and again.board_id == board.board_id
    drill, created = open_board(store_engine, ["nws:a", "nws:b"], name="Drill", actor="u:a",
                                now=NOW, exercise=True)
    assert created and drill.board_id != board.board_id and drill.exercise
    assert [b.board_id for b in list_boards(store_engine)] == [board.board_id]
    assert {b.board_id for b in list_boards(store_engine, exercise=None)} == {
        board.board_id, drill.board_id}
    assert len(query_audit(store_engine, action="outreach.board")) == 2
    close_board(store_engine, board.board_id, actor="u:a", now=NOW)
    reopened, created = open_board(store_engine, ["nws:a", "nws:b"], name="F2", actor="u:a",
                                   now=NOW)
    assert created and reopened.board_id != board.board_id
    with pytest.raises(BoardNotFound):
        get_board(store_engine, 9999)
    with pytest.raises(ValueError, match="1 to"):
        open_board(store_engine, [], name="", actor="u", now=NOW)


def test_updates_append_and_conflicts_are_reported(store_engine) -> None:
    board, _ = open_board(store_engine, ["nws:a"], name="A", actor="u", now=NOW)
    first, written = record_status(store_engine, board.board_id, "mission", "M-1", "attempted",
                                   note="no answer", actor="user:ana", now=NOW,
                                   expected_event_id=0)
    assert written and first.previous_event_id == 0
    # Bo saw the board before Ana's update: his update is refused, not written over hers
    with pytest.raises(OutreachConflict, match="user:ana") as caught:
        record_status(store_engine, board.board_id, "mission", "M-1", "reached_safe",
                      actor="user:bo", now=NOW, expected_event_id=0)
    assert caught.value.current.event_id == first.event_id
    second, _ = record_status(store_engine, board.board_id, "mission", "M-1", "reached_safe",
                              actor="user:bo", now=NOW + timedelta(minutes=1),
                              expected_event_id=first.event_id)
    # a blind append (no expectation) goes after whatever is latest
    third, _ = record_status(store_engine, board.board_id, "mission", "M-1",
                             "reached_needs_assistance", note="needs water", actor="api",
                             now=NOW + timedelta(minutes=2))
    assert third.previous_event_id == second.event_id
    latest = latest_statuses(store_engine, board.board_id).set_index("target_id")
    assert latest.loc["M-1", "status"] == "reached_needs_assistance"
    assert latest.loc["M-1", "updates"] == 3
    assert latest.loc["M-1", "first_contact_at"] == NOW
    assert list(history(store_engine, board.board_id, ("mission", "M-1"))["status"]) == [
        "attempted", "reached_safe", "reached_needs_assistance"]
    with pytest.raises(ValueError, match="status must be one of"):
        record_status(store_engine, board.board_id, "mission", "M-1", "fine", actor="a",
                      now=NOW)
    with pytest.raises(ValueError, match="target_kind"):
        record_status(store_engine, board.board_id, "person", "P-1", "attempted", actor="a",
                      now=NOW)


def test_a_retried_request_is_stored_once(store_engine) -> None:
    board, _ = open_board(store_engine, ["nws:a"], name="A", actor="u", now=NOW)
    event, written = record_status(store_engine, board.board_id, "household", "H-1",
                                   "reached_safe", actor="api", now=NOW, request_id="req-1")
    again, written_again = record_status(store_engine, board.board_id, "household", "H-1",
                                         "reached_safe", actor="api", now=NOW,
                                         request_id="req-1")
    assert written and not written_again and again == event
    assert len(history(store_engine, board.board_id)) == 1


def test_history_is_append_only_in_the_database(store_engine) -> None:
    board, _ = open_board(store_engine, ["nws:a"], name="A", actor="u", now=NOW)
    record_status(store_engine, board.board_id, "mission", "M-1", "attempted", actor="a",
                  now=NOW)
    for statement in (outreach_events.update().values(status="reached_safe"),
                      outreach_events.delete()):
        with pytest.raises(sa.exc.DatabaseError), store_engine.begin() as connection:
            connection.execute(statement)
    assert list(history(store_engine, board.board_id)["status"]) == ["attempted"]


def test_targets_are_recorded_once_with_when_they_appeared(store_engine) -> None:
    board, _ = open_board(store_engine, ["nws:a"], name="A", actor="u", now=NOW)
    assert add_targets(store_engine, board.board_id, [("mission", "M-1"), ("household", "H-1")],
                       now=NOW) == 2
    later = NOW + timedelta(minutes=30)
    assert add_targets(store_engine, board.board_id, [("mission", "M-1"), ("household", "H-2")],
                       now=later) == 1
    seen = first_seen(store_engine, board.board_id).set_index("target_id")["first_seen_at"]
    assert seen["M-1"] == NOW and seen["H-2"] == later
    before = board_version(store_engine, board.board_id)
    record_status(store_engine, board.board_id, "household", "H-2", "attempted", actor="a",
                  now=later)
    assert board_version(store_engine, board.board_id) != before


def test_concurrent_writers_lose_nothing(store_engine) -> None:
    """Eight writers, forty updates each on the same few targets: every acknowledged update
    is in the history once, and each target's chain of events is unbroken."""
    board, _ = open_board(store_engine, ["nws:a"], name="A", actor="u", now=NOW)
    acknowledged: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        try:
            for i in range(40):
                event, _ = record_status(
                    store_engine, board.board_id, "mission", f"M-{i % 3}",
                    ("attempted", "reached_safe", "unreachable")[i % 3], actor=f"w{n}",
                    now=NOW, request_id=f"w{n}-{i}")
                with lock:
                    acknowledged.append(event.event_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = history(store_engine, board.board_id)
    assert sorted(events["event_id"]) == sorted(acknowledged) and len(acknowledged) == 320
    for _, chain in events.groupby("target_id"):
        ids = list(chain["event_id"])
        assert list(chain["previous_event_id"]) == [0, *ids[:-1]]  # one unbroken chain


def test_coordinators_opening_the_same_board_at_once_get_one_board(database_url) -> None:
    """Two worker processes (two engines), several threads each, all starting outreach for
    the same incidents at the same moment: one board, opened once, given to everybody."""
    from store.db import create_engine, migrate

    engines = [create_engine(database_url) for _ in range(2)]
    migrate(engines[0])
    barrier = threading.Barrier(8)
    boards: list = []
    errors: list = []

    def start(engine) -> None:
        barrier.wait()
        try:
            boards.append(open_board(engine, ["nws:a", "nws:b"], name="flood", actor="c",
                                     now=NOW))
        except Exception as exc:  # the test reports any failure below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(engines[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert not errors, errors
        assert len({board.board_id for board, _ in boards}) == 1
        assert sum(created for _, created in boards) == 1
        assert len(query_audit(engines[0], action="outreach.board")) == 1
    finally:
        for engine in engines:
            engine.dispose()
