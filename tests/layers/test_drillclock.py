"""The drill clock: wall time to scenario minutes and back, with pauses, speed changes, stop."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layers.drillclock import (
    MAX_SPEED,
    check_speed,
    current_speed,
    elapsed_minutes,
    is_paused,
    wall_time_of,
)

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=timezone.utc)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_real_time_and_fast_speeds() -> None:
    assert elapsed_minutes(T0, 1, [], T0 + minutes(30)) == 30
    assert elapsed_minutes(T0, 60, [], T0 + minutes(1)) == 60
    assert elapsed_minutes(T0, MAX_SPEED, [], T0 + timedelta(seconds=1)) == 60
    assert elapsed_minutes(T0, 1, [], T0 - minutes(5)) == 0  # not started yet
    assert elapsed_minutes(T0, 1, [], T0) == 0


def test_pauses_are_not_counted_and_an_open_pause_freezes_the_clock() -> None:
    pauses = [(T0 + minutes(10), T0 + minutes(30))]
    assert elapsed_minutes(T0, 1, pauses, T0 + minutes(35)) == 15
    assert elapsed_minutes(T0, 1, pauses, T0 + minutes(20)) == 10  # during the pause
    open_pause = [*pauses, (T0 + minutes(40), None)]
    assert elapsed_minutes(T0, 1, open_pause, T0 + minutes(40)) == 20
    assert elapsed_minutes(T0, 1, open_pause, T0 + minutes(400)) == 20
    assert is_paused(open_pause, T0 + minutes(41)) and not is_paused(pauses, T0 + minutes(31))
    assert is_paused(pauses, T0 + minutes(10)) and not is_paused(pauses, T0 + minutes(30))


def test_a_stopped_drill_is_frozen_even_if_it_was_paused() -> None:
    stop = T0 + minutes(20)
    assert elapsed_minutes(T0, 2, [], T0 + minutes(90), stop) == 40
    assert elapsed_minutes(T0, 2, [], T0 + minutes(10), stop) == 20  # before the stop
    pauses = [(T0 + minutes(5), None)]
    assert elapsed_minutes(T0, 2, pauses, T0 + minutes(90), stop) == 10
    assert wall_time_of(41, T0, 2, [], T0 + minutes(90), stopped_at=stop) is None
    assert wall_time_of(30, T0, 2, [], T0 + minutes(90), stopped_at=stop) == T0 + minutes(15)


def test_a_speed_change_keeps_the_clock_continuous() -> None:
    change = T0 + minutes(10)
    changes = [(change, 60.0)]
    assert elapsed_minutes(T0, 1, [], change, speed_changes=changes) == 10
    assert elapsed_minutes(T0, 1, [], change + minutes(1), speed_changes=changes) == 70
    # a change made while paused counts from the resume
    pauses = [(T0 + minutes(5), T0 + minutes(15))]
    assert elapsed_minutes(T0, 1, pauses, T0 + minutes(16), speed_changes=changes) == 65
    assert current_speed(1, changes, change - timedelta(microseconds=1)) == 1
    assert current_speed(1, changes, change) == 60


def test_wall_time_of_past_future_paused_and_stopped_minutes() -> None:
    pauses = [(T0 + minutes(10), T0 + minutes(30))]
    now = T0 + minutes(40)
    assert wall_time_of(0, T0, 1, pauses, now) == T0
    assert wall_time_of(5, T0, 1, pauses, now) == T0 + minutes(5)
    # minute 10 was first reached as the pause began
    assert wall_time_of(10, T0, 1, pauses, now) == T0 + minutes(10)
    assert wall_time_of(15, T0, 1, pauses, now) == T0 + minutes(35)
    # not reached yet: at the current speed from now on
    assert wall_time_of(30, T0, 1, pauses, now) == T0 + minutes(50)
    assert wall_time_of(30, T0, 1, pauses, now, speed_changes=[(now, 10.0)]) == \
        now + minutes(1)
    paused_now = [*pauses, (T0 + minutes(35), None)]
    assert wall_time_of(14, T0, 1, paused_now, now) == T0 + minutes(34)
    assert wall_time_of(16, T0, 1, paused_now, now) is None
    assert wall_time_of(15, T0, 1, paused_now, now) == T0 + minutes(35)


@pytest.mark.parametrize("speed", [0, 0.5, 3601, float("nan"), float("inf"), "60", True, None])
def test_speeds_out_of_range_are_refused(speed) -> None:
    with pytest.raises(ValueError, match="speed"):
        elapsed_minutes(T0, speed, [], T0)
    with pytest.raises(ValueError, match=r"speed_changes\[1\] speed"):
        elapsed_minutes(T0, 1, [], T0, speed_changes=[(T0, speed)])
    with pytest.raises(ValueError, match="from 1"):
        check_speed(-1)


def test_bad_histories_are_refused_naming_the_argument() -> None:
    naive = datetime(2026, 11, 28, 14, 0)  # noqa: DTZ001 - the naive datetime under test
    with pytest.raises(ValueError, match="started_at must be a timezone-aware"):
        elapsed_minutes(naive, 1, [], T0)
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        elapsed_minutes(T0, 1, [], naive)
    with pytest.raises(ValueError, match="stopped_at must not be before"):
        elapsed_minutes(T0, 1, [], T0, T0 - minutes(1))
    with pytest.raises(ValueError, match=r"pauses\[2\] starts .* must be in order"):
        elapsed_minutes(T0, 1, [(T0 + minutes(5), T0 + minutes(9)),
                                (T0 + minutes(8), None)], T0)
    with pytest.raises(ValueError, match=r"pauses\[1\] starts"):
        elapsed_minutes(T0, 1, [(T0 - minutes(1), T0 + minutes(1))], T0)
    with pytest.raises(ValueError, match="only the last pause"):
        elapsed_minutes(T0, 1, [(T0, None), (T0 + minutes(1), None)], T0)
    with pytest.raises(ValueError, match="resumes before it pauses"):
        elapsed_minutes(T0, 1, [(T0 + minutes(2), T0 + minutes(1))], T0)
    with pytest.raises(ValueError, match=r"speed_changes\[2\] .* must be in order"):
        elapsed_minutes(T0, 1, [], T0, speed_changes=[(T0 + minutes(2), 2), (T0, 3)])
    with pytest.raises(ValueError, match="elapsed_minutes must be a finite number >= 0"):
        wall_time_of(-1, T0, 1, [], T0)
    with pytest.raises(ValueError, match="pair"):
        elapsed_minutes(T0, 1, [T0], T0)  # type: ignore[list-item]


# --------------------------------------------------------------------------- properties


@dataclasses.dataclass(frozen=True)
class History:
    started_at: datetime
    speed: float
    pauses: tuple[tuple[datetime, datetime | None], ...]
    speed_changes: tuple[tuple[datetime, float], ...]
    stopped_at: datetime | None
    end: datetime  # the last event; "now" is drawn at or after it

    def elapsed(self, now: datetime) -> float:
        return elapsed_minutes(self.started_at, self.speed, self.pauses, now, self.stopped_at,
                               speed_changes=self.speed_changes)

    def wall(self, minute: float, now: datetime) -> datetime | None:
        return wall_time_of(minute, self.started_at, self.speed, self.pauses, now,
                            stopped_at=self.stopped_at, speed_changes=self.speed_changes)


speeds = st.one_of(st.sampled_from([1.0, 2.0, 60.0, 600.0, 3600.0]),
                   st.floats(min_value=1, max_value=3600, allow_nan=False))
gaps = st.integers(min_value=0, max_value=6 * 3600 * 10**6).map(
    lambda us: timedelta(microseconds=us))


@st.composite
def histories(draw) -> History:
    """A drill as the store would record it: start, then pause/resume/speed in any legal
    order, maybe a stop."""
    started_at = T0 + draw(gaps)
    at, paused, stopped = started_at, False, None
    pauses: list[tuple[datetime, datetime | None]] = []
    changes: list[tuple[datetime, float]] = []
    for op in draw(st.lists(st.sampled_from(["pause", "speed", "stop"]), max_size=8)):
        at += draw(gaps)
        if op == "pause":
            if paused:
                pauses[-1] = (pauses[-1][0], at)
            else:
                pauses.append((at, None))
            paused = not paused
        elif op == "speed":
            changes.append((at, draw(speeds)))
        else:
            stopped = at
            break
    return History(started_at, draw(speeds), tuple(pauses), tuple(changes), stopped, at)


WALL_TOLERANCE = timedelta(microseconds=5)


def close(a: float, b: float) -> bool:
    # one microsecond of wall time at the top speed is 6e-5 scenario minutes
    return abs(a - b) <= 1e-3 + 1e-9 * abs(b)


@settings(max_examples=300, deadline=None)
@given(histories(), st.lists(gaps, min_size=2, max_size=6))
def test_elapsed_never_decreases(history: History, offsets) -> None:
    times = sorted(history.started_at - timedelta(hours=1) + gap * 3 for gap in offsets)
    values = [history.elapsed(t) for t in times]
    assert values == sorted(values)
    assert all(v >= 0 for v in values)


@settings(max_examples=300, deadline=None)
@given(histories(), gaps, st.floats(min_value=0, max_value=1))
def test_wall_time_of_inverts_elapsed_over_the_past(history: History, after, fraction) -> None:
    now = history.end + after
    moment = history.started_at + (now - history.started_at) * fraction
    reached = history.elapsed(moment)
    wall = history.wall(reached, now)
    assert wall is not None
    assert wall <= moment + WALL_TOLERANCE  # the first instant the minute was reached
    assert close(history.elapsed(wall), reached)
    # and if the clock was running just before that moment, it is that moment
    if history.elapsed(moment - timedelta(microseconds=1)) < reached:
        assert abs(wall - moment) <= WALL_TOLERANCE


@settings(max_examples=300, deadline=None)
@given(histories(), gaps, st.floats(min_value=0, max_value=5000, allow_nan=False))
def test_wall_time_of_the_future_is_where_the_clock_will_get(history: History, after,
                                                           ahead) -> None:
    now = history.end + after
    reached = history.elapsed(now)
    target = reached + ahead
    wall = history.wall(target, now)
    running = history.stopped_at is None and not is_paused(history.pauses, now)
    if target > reached and not running:
        assert wall is None
        return
    assert wall is not None
    assert close(history.elapsed(wall), target)


@settings(max_examples=200, deadline=None)
@given(histories(), gaps, st.lists(st.floats(min_value=0, max_value=2000), min_size=2,
                                   max_size=6))
def test_wall_time_of_never_decreases(history: History, after, targets) -> None:
    now = history.end + after
    walls = [history.wall(m, now) for m in sorted(targets)]
    known = [w for w in walls if w is not None]
    assert known == sorted(known)
    # once a minute is out of reach (paused or stopped), every later minute is too
    assert walls[len(known):] == [None] * (len(walls) - len(known))


@settings(max_examples=200, deadline=None)
@given(histories(), gaps)
def test_speed_changes_do_not_jump_and_a_stop_freezes(history: History, after) -> None:
    for at, _ in history.speed_changes:
        before = history.elapsed(at - timedelta(microseconds=1))
        assert close(history.elapsed(at), before)
    if history.stopped_at is not None:
        frozen = history.elapsed(history.stopped_at)
        assert history.elapsed(history.stopped_at + after) == frozen
