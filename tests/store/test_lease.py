"""The poller lease: one poller at a time, a standby takes over when the holder goes."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from feeds.poller import UnavailableClient, run_poller
from settings import Settings
from store.db import create_engine
from store.lease import PollerLease


def _wait_until(predicate, timeout: float = 20.0) -> bool:
    event = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        event.wait(0.05)
    return predicate()


def test_one_holder_at_a_time_and_the_next_takes_over(store_engine, database_url) -> None:
    other_engine = create_engine(database_url)  # as another process would have
    first, second = PollerLease(store_engine), PollerLease(other_engine)
    try:
        assert first.acquire()
        assert first.acquire()  # taking it again while held is a no-op
        assert first.held()
        assert not second.acquire()
        assert not second.held()
        first.release()
        assert not first.held()
        assert second.acquire()
        assert not first.acquire()
    finally:
        first.release()
        second.release()
        other_engine.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # sessions: PostgreSQL
def test_a_postgres_session_that_ends_loses_the_lease(store_engine) -> None:
    lease, successor = PollerLease(store_engine), PollerLease(store_engine)
    try:
        assert lease.acquire()
        pid = lease._connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        lease._connection.commit()
        with store_engine.connect() as connection:  # what a database restart does to it
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert _wait_until(successor.acquire)
        assert not lease.held()
        assert not lease.acquire()
    finally:
        lease.release()
        successor.release()


def test_a_standby_poller_polls_only_after_the_holder_stops(store_engine, database_url) -> None:
    settings = Settings.from_env({})
    other_engine = create_engine(database_url)
    leases = [PollerLease(store_engine), PollerLease(other_engine)]
    stops = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=run_poller, args=(engine, settings, stop), kwargs={
        "sources": ["gdacs"], "client": UnavailableClient("no network in this test"),
        "check_s": 0.05, "lease": lease}, daemon=True)
        for engine, stop, lease in zip((store_engine, other_engine), stops, leases,
                                       strict=True)]
    try:
        threads[0].start()
        assert _wait_until(leases[0].held)
        threads[1].start()
        assert not _wait_until(leases[1].held, timeout=0.5)  # standing by
        stops[0].set()
        threads[0].join(timeout=30)
        assert not threads[0].is_alive()
        assert _wait_until(leases[1].held)  # the standby took over
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(timeout=30)
        other_engine.dispose()
    assert not any(lease.held() for lease in leases)
