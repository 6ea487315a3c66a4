"""Rate-limit counters in the store: shared by every process, windows that expire."""

from __future__ import annotations

import limits
import pytest
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from store.db import create_engine
from store.ratelimit import SCHEME, StoreLimits


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_grow_within_a_window_and_start_again_after_it(store_engine) -> None:
    clock = Clock()
    storage = StoreLimits(engine=store_engine, clock=clock)
    assert storage.get("k") == 0
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.incr("k", 60, amount=2) == 5
    assert storage.get("k") == 5
    assert storage.get_expiry("k") == pytest.approx(clock.now + 60)
    assert storage.get("other") == 0
    clock.now += 60  # the window has passed: the key counts from nothing again
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1
    assert storage.get_expiry("k") == pytest.approx(clock.now + 60)
    storage.clear("k")
    assert storage.get("k") == 0
    storage.incr("a", 10)
    storage.incr("b", 10)
    assert storage.reset() == 2
    assert storage.check()


def test_two_processes_share_one_limit(database_url) -> None:
    """Two engines on one store (as two worker processes have) count the same attempts."""
    first, second = create_engine(database_url), create_engine(database_url)
    try:
        from store.db import migrate

        migrate(first)
        workers = [FixedWindowRateLimiter(storage_from_string(
            f"{SCHEME}://", engine=engine)) for engine in (first, second)]
        limit = limits.parse("3/minute")
        allowed = [workers[i % 2].hit(limit, "signin", "203.0.113.9") for i in range(6)]
        assert allowed == [True, True, True, False, False, False]
        # another address has its own count
        assert workers[1].hit(limit, "signin", "203.0.113.10")
    finally:
        first.dispose()
        second.dispose()


def test_the_storage_needs_an_engine() -> None:
    with pytest.raises(ValueError, match="engine"):
        storage_from_string(f"{SCHEME}://")
