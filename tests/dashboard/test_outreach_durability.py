"""kill -9 in the middle of a burst of status updates: nothing acknowledged is lost.

The real server (``python app.py serve --no-poll``) runs in a process of its own on SQLite and
on PostgreSQL; a few coordinators update statuses through the API; the server is killed with
SIGKILL mid-burst and started again on the same store. Every update it acknowledged must be in
the store exactly once, as acknowledged; nothing refused or unanswered may be half there; every
target's events form one chain; retrying an unanswered request with its request id after the
restart stores it at most once.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
import shapely

from benchmarks.outreach_load import (
    Outcome,
    Server,
    make_coordinators,
    run_coordinators,
    verify,
)
from feeds.model import Hazard
from feeds.sources import SOURCE_NAMES
from store.db import open_store
from store.feeds import replace_hazards
from store.outreach import history, open_board, record_status
from store.roster import replace_roster

pytestmark = pytest.mark.slow

V1 = "/api/v1"
ACKS_BEFORE_KILL = 60   # events in the store when the server is killed
RETRIES = 40            # unanswered requests retried after the restart


def _store(database_url, roster) -> object:
    """A store with the roster, one hazard over Washington (the incident), and every other
    feed fresh and empty, so the server stores no bundled recordings and starts quickly."""
    now = datetime.now(timezone.utc)
    engine = open_store(database_url)
    missions, people = roster
    replace_roster(engine, missions, people, source="test roster", actor="test", now=now,
                   synthetic=True)
    for source in SOURCE_NAMES:
        hazards = [Hazard("nws:test-dc", "nws", "Flash Flood Warning", "flood",
                          severity="severe", expires=now + timedelta(days=3),
                          geometry=shapely.box(-77.2, 38.8, -76.9, 39.05),
                          geometry_method="polygon", area_desc="District of Columbia")
                   ] if source == "nws" else []
        replace_hazards(engine, source, hazards, now=now)
    return engine


def test_acknowledged_updates_survive_kill_9(database_url, checked_small_roster, tmp_path,
                                             fast_hashing) -> None:
    engine = _store(database_url, checked_small_roster)
    secrets = make_coordinators(engine, 4, prefix="burst")
    server = Server(database_url, tmp_path, "before")
    try:
        server.wait_ready(secrets[0], timeout=120)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {secrets[0]}"
        opened = session.post(f"{server.url}{V1}/boards", json={"incidents": "nws:test-dc"},
                              timeout=60)
        assert opened.status_code == 201, opened.text
        board_id = opened.json()["board"]["board_id"]
        rows = session.get(f"{server.url}{V1}/boards/{board_id}/targets?per_page=1000",
                           timeout=60).json()["items"]
        # a few targets only, so that coordinators collide and chains grow long
        targets = [(t["target_kind"], t["target_id"], t["event_id"]) for t in rows[:12]]
        assert len(targets) == 12

        stop = threading.Event()
        result: dict[str, object] = {}

        def burst() -> None:
            result["outcomes"], _ = run_coordinators(
                server.url, secrets, board_id, targets, seconds=25, max_requests=20_000,
                seed=7, stop=stop, hot=4, timeout=10)

        runner = threading.Thread(target=burst)
        runner.start()
        deadline = time.monotonic() + 20
        while len(history(engine, board_id)) < ACKS_BEFORE_KILL:
            assert time.monotonic() < deadline, "the burst made no progress"
            time.sleep(0.02)
        server.kill()  # SIGKILL, mid-burst: the coordinators are still sending
        time.sleep(0.3)
        stop.set()
        runner.join(timeout=60)
        outcomes = result["outcomes"]
        verdict = verify(engine, board_id, outcomes)
        assert verdict.acknowledged >= ACKS_BEFORE_KILL - 4  # (some answers were in flight)
        assert verdict.unanswered > 0, "the server was not killed mid-burst"
        assert verdict.ok, verdict
        assert verdict.lost == verdict.conflicts_stored == verdict.half_stored == 0
        assert verdict.broken_chains == 0 and verdict.foreign == 0

        # the same store, a new server: it serves what was stored
        server = Server(database_url, tmp_path, "after")
        server.wait_ready(secrets[0], timeout=120)
        progress = session.get(f"{server.url}{V1}/boards/{board_id}",
                               timeout=60).json()["progress"]
        touched = sum(p["total"] - p["not_contacted"] for p in progress.values())
        assert touched == verdict.targets_updated > 0
        # an unanswered request, retried with its request id, is stored at most once
        stored_ids = set(history(engine, board_id)["request_id"])
        unanswered = [o for o in outcomes if o.http_status is None]
        retried = [o for o in unanswered if o.request_id in stored_ids] + \
            [o for o in unanswered if o.request_id not in stored_ids][:RETRIES]
        for o in retried:
            body = {"status": o.status, "note": o.note, "request_id": o.request_id}
            if o.expected is not None:
                body["expected_event_id"] = o.expected
            answer = session.post(f"{server.url}{V1}/boards/{board_id}/targets/{o.kind}/"
                                  f"{o.target_id}/status", json=body, timeout=60)
            if o.request_id in stored_ids:
                assert answer.status_code == 200, answer.text  # already stored: not again
                assert answer.json()["note"] == o.note
            else:
                assert answer.status_code in (201, 409), answer.text
            o.http_status = answer.status_code
            o.event_id = answer.json()["event_id"] if answer.ok else None
        final = verify(engine, board_id, outcomes)
        assert final.ok, final
        logging.getLogger(__name__).info("kill -9 mid-burst: %s; after %d retries: %s",
                                         verdict, len(retried), final)
        assert final.acknowledged == verdict.acknowledged + sum(
            1 for o in retried if 200 <= (o.http_status or 0) < 300)
    finally:
        server.stop()
        engine.dispose()


def test_the_check_finds_lost_double_and_half_stored_updates(store_engine) -> None:
    """The checker of the test above fails when it should (no server needed)."""
    now = datetime.now(timezone.utc)
    board, _ = open_board(store_engine, ["nws:x"], name="x", actor="test", now=now)
    written = []
    for i, request_id in enumerate(("a", "b", "c")):
        event, _ = record_status(store_engine, board.board_id, "mission", "M-1", "attempted",
                                 note=f"n{i}", actor="test", now=now, request_id=request_id)
        written.append(event)

    def outcome(request_id: str, status: int | None, event_id: int | None, note: str,
                target: str = "M-1") -> Outcome:
        return Outcome(0, request_id, "mission", target, "attempted", note, None, status,
                       event_id, 0.01)

    good = [outcome(e.request_id, 201, e.event_id, e.note) for e in written]
    assert verify(store_engine, board.board_id, good).ok
    checks = {
        "lost": [*good, outcome("never-stored", 201, 999, "n9")],
        "conflicts_stored": [*good[:2], outcome("c", 409, written[1].event_id, "n2")],
        "errors_stored": [*good[:2], outcome("c", 500, None, "n2")],
        "half_stored": [*good[:2], outcome("c", None, None, "something else")],
        "foreign": good[:2],
    }
    for field, outcomes in checks.items():
        verdict = verify(store_engine, board.board_id, outcomes)
        assert getattr(verdict, field) == 1 and not verdict.ok, field
    wrong_event = [*good[:2], outcome("c", 201, written[0].event_id, "n2")]
    assert verify(store_engine, board.board_id, wrong_event).lost == 1
    unanswered = [*good[:2], outcome("c", None, None, "n2")]
    verdict = verify(store_engine, board.board_id, unanswered)
    assert verdict.ok and verdict.unanswered_stored == 1
    record_status(store_engine, board.board_id, "mission", "M-2", "attempted", note="z",
                  actor="test", now=now, request_id="z")
    assert verify(store_engine, board.board_id,
                  [*good, outcome("z", 201, written[-1].event_id + 1, "z", "M-2")]).ok
