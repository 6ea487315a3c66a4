"""Feed clocks: the server's time of an answer, the skew, the expiry lag and its words."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from feeds.clock import (
    SKEW_TOLERANCE_S,
    describe_skew,
    expiry_lag,
    measure_skew,
    newest_sent,
    server_time,
)

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)
H = 3600.0


def test_server_time_reads_the_http_date_plus_age() -> None:
    assert server_time("Fri, 27 Nov 2026 05:00:00 GMT") == NOW - timedelta(hours=3)
    assert server_time("Fri, 27 Nov 2026 05:00:00 GMT", "120") == NOW - timedelta(
        hours=3) + timedelta(minutes=2)
    assert server_time("Fri, 27 Nov 2026 05:00:00 GMT", "-5") == NOW - timedelta(hours=3)
    assert server_time("Fri, 27 Nov 2026 05:00:00 GMT", "999999999") == NOW + timedelta(
        hours=21)  # an Age is capped at a day
    assert server_time("Fri, 27 Nov 2026 00:00:00 -0500") == NOW - timedelta(hours=3)
    for bad in (None, "", "yesterday", "Fri, 99 Nov 2026 05:00:00 GMT", "\x00"):
        assert server_time(bad) is None, bad


def test_newest_sent_ignores_missing_times() -> None:
    assert newest_sent([None, NOW, NOW - timedelta(hours=1), None]) == NOW
    assert newest_sent([None]) is None and newest_sent([]) is None


def test_measure_skew_prefers_the_date_header_then_future_messages() -> None:
    behind = NOW - timedelta(hours=3)
    assert measure_skew(behind, NOW, now=NOW) == -3 * H           # the header wins
    assert measure_skew(NOW + timedelta(hours=5), None, now=NOW) == 5 * H
    assert measure_skew(None, NOW + timedelta(hours=5), now=NOW) == 5 * H
    # without a header, messages dated in the past or just ahead measure nothing
    assert measure_skew(None, NOW - timedelta(days=2), now=NOW) is None
    assert measure_skew(None, NOW + timedelta(seconds=SKEW_TOLERANCE_S), now=NOW) is None
    assert measure_skew(None, None, now=NOW) is None


@pytest.mark.parametrize(("skew_h", "newest_age_h", "lag_h"), [
    (-3, 3.2, 3),       # feed behind, its newest message is older still: the whole skew
    (-3, 0.5, 0.5),     # a wrong Date over a payload with a message 30 min old: at most that
    (-3, 0.01, 0),      # ... and one 36 s old: within the tolerance, nothing
    (-3, None, 3),      # no messages to check against
    (-0.05, 5, 0),      # 3 min behind: noise
    (5, -5, 0),         # ahead: never judged later than our clock
    (None, 1, 0),       # not measured
])
def test_expiry_lag_only_ever_keeps_hazards_longer(skew_h, newest_age_h, lag_h) -> None:
    skew = None if skew_h is None else skew_h * H
    newest = None if newest_age_h is None else NOW - timedelta(hours=newest_age_h)
    lag = expiry_lag(skew, newest, now=NOW)
    assert lag == pytest.approx(lag_h * H)
    assert lag >= 0


def test_naive_times_are_refused() -> None:
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        measure_skew(None, None, now=naive)
    with pytest.raises(ValueError, match="server must be a timezone-aware"):
        measure_skew(naive, None, now=NOW)
    with pytest.raises(ValueError, match="newest must be a timezone-aware"):
        expiry_lag(-3 * H, naive, now=NOW)


@pytest.mark.parametrize(("skew_s", "words"), [
    (None, None),
    (SKEW_TOLERANCE_S, None),
    (-SKEW_TOLERANCE_S, None),
    (-10_800, "clock 3 h behind"),
    (18_000, "clock 5 h ahead"),
    (-900, "clock 15 min behind"),
    (9_000, "clock 2.5 h ahead"),
    (64_800, "clock 18 h ahead"),
    (-3 * 86_400, "clock 3 days behind"),
])
def test_describe_skew(skew_s, words) -> None:
    assert describe_skew(skew_s) == words
