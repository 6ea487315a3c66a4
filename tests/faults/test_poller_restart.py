"""The poller killed in the middle of a poll, a standby taking over, and a restart.

Two real poller processes (``python app.py feeds poll``) poll a local NWS feed serving real
recorded alerts (tests/fixtures/nws, times relative to the poll). On SQLite and PostgreSQL:

1. the first poller takes the lease and stores the feed; a second one stands by;
2. the feed changes and turns slow; the first poller is killed (SIGKILL) while it waits for it;
3. the stored snapshot is exactly the one before, whole, and its health says when it was good;
4. the standby takes the lease within seconds and stores the new snapshot;
5. the first poller, started again, stands by; the second is stopped (SIGTERM) and the first
   takes over and polls on.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.faults.cluster import Process, app_environment, wait_for
from tests.feeds.local_server import LocalServer

NWS = Path(__file__).resolve().parent.parent / "fixtures" / "nws"
FIRST = NWS / "weathergov_guam-7day_alerts-active.json"
SECOND = NWS / "weathergov_air-quality-alerts_alerts-active.json"


def stored(url: str) -> tuple[set[str], object]:
    """The NWS hazard ids in the store, and the source's last success."""
    import sqlalchemy as sa

    from store.db import create_engine
    from store.feeds import first_seen_times
    from store.tables import feed_health

    engine = create_engine(url)
    try:
        ids = {h for h in first_seen_times(engine) if h.startswith("nws:")}
        with engine.connect() as connection:
            success = connection.execute(sa.select(feed_health.c.last_success).where(
                feed_health.c.source == "nws")).scalar()
    finally:
        engine.dispose()
    return ids, success


def live(path: Path) -> bytes:
    """A recorded weather.gov payload with its relative times ("date:now -2 minutes") made
    absolute, as the live API serves them."""
    from feeds.nws import resolve_template_times

    payload = json.loads(path.read_text())
    return json.dumps(resolve_template_times(payload, now=datetime.now(timezone.utc))).encode()


@pytest.fixture
def feed():
    """The NWS alerts feed on loopback: ``state["body"]`` answers, slowly while ``slow`` is
    set (the request waits until it is cleared); zone lookups answer 404 at once."""
    state = {"body": live(FIRST), "slow": threading.Event(), "waiting": threading.Event()}

    def alerts(_query):
        if state["slow"].is_set():
            state["waiting"].set()
            while state["slow"].is_set():
                time.sleep(0.05)
        return 200, "application/geo+json", state["body"]

    with LocalServer() as server:
        server.routes["/alerts/active"] = alerts
        state["server"] = server
        yield state


def test_a_killed_poller_loses_nothing_and_the_standby_takes_over(feed, database_url,
                                                                   tmp_path) -> None:
    from store.db import open_store

    open_store(database_url).dispose()  # migrated once, before the pollers race to it
    server = feed["server"]
    env = app_environment(database_url, tmp_path,
                          MISSIONWATCH_NWS_ALERTS_URL=server.base + "/alerts/active",
                          MISSIONWATCH_NWS_API_BASE=server.base,
                          MISSIONWATCH_NWS_INTERVAL_S="10")

    def poller(name: str) -> Process:
        return Process([*Process.poller(env, tmp_path / f"{name}.log", "nws").argv,
                        "--lease-check", "0.5"], env, tmp_path / f"{name}.log").start()

    first = poller("first")
    second = None
    try:
        wait_for(lambda: stored(database_url)[1], 60, what="the first poll")
        before, good_at = stored(database_url)
        assert before, "the first snapshot stored no alert: the test would prove nothing"
        second = poller("second")
        wait_for(lambda: "standing by" in second.output(), 30, what="the second to stand by")
        assert "poller lease taken" not in second.output()

        # the next poll finds a new feed, slowly: killed while it waits for the answer
        feed["body"] = live(SECOND)
        feed["slow"].set()
        wait_for(feed["waiting"].is_set, 30, what="the first poller's next request")
        first.kill(signal.SIGKILL)
        assert stored(database_url) == (before, good_at)  # whole, untouched, same age

        feed["slow"].clear()
        wait_for(lambda: "poller lease taken" in second.output(), 30,
                 what="the standby to take the lease")
        after = wait_for(lambda: (ids := stored(database_url)[0]) != before and ids, 60,
                         what="the standby's poll of the new feed")
        second_payload = live(SECOND)
        assert all(h.split(":", 1)[1].encode() in second_payload for h in after)

        # the first poller again: it waits; the second stops cleanly; the first takes over
        first = poller("first-again")
        wait_for(lambda: "standing by" in first.output(), 30, what="the restarted poller")
        second.kill(signal.SIGTERM)
        assert "Poller stopped." in second.output()
        feed["body"] = live(FIRST)
        wait_for(lambda: stored(database_url)[0] == before, 60,
                 what="the restarted poller to take over and poll")
    finally:
        feed["slow"].clear()
        for process in (first, second):
            if process is not None:
                process.stop()
    for process in (first, second):
        assert "Traceback" not in process.output()
