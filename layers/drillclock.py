"""The drill clock: which scenario minute a drill has reached at a wall time, and back.

A drill plays a scenario at a speed from 1 (real time) to 3600 (a scenario hour every wall
second). It can be paused and resumed, its speed changed while it runs, and stopped. The
scenario time reached is the integral of the speed over the wall time the drill has been
running::

    elapsed(now) = Σ over running spans up to min(now, stopped_at) of  seconds × speed / 60

so a speed change never makes the clock jump: the minutes reached so far stay, and only the
rate changes from the wall time of the change (``speed_changes``: ``(from_wall_time, speed)``
in order). A pause is ``(paused_at, resumed_at)``, ``resumed_at`` None while it lasts. Pauses
and speed changes that come after ``now`` do not count yet.

:func:`wall_time_of` is the inverse: the wall time at which a scenario minute was reached (the
first instant, so a minute reached just as the drill was paused maps to the pause), or will be
reached if the drill keeps running at its speed at ``now``. A minute not yet reached while the
drill is paused or stopped has no wall time (None).

Pure: no I/O, no clock reads (``now`` is a parameter). Bad arguments (naive datetimes, speeds
out of range, pauses out of order) raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

MIN_SPEED = 1.0
MAX_SPEED = 3600.0

Pause = tuple[datetime, datetime | None]
SpeedChange = tuple[datetime, float]

__all__ = [
    "MAX_SPEED",
    "MIN_SPEED",
    "check_speed",
    "current_speed",
    "elapsed_minutes",
    "is_paused",
    "wall_time_of",
]


def check_speed(speed: float, argument: str = "speed") -> float:
    """``speed`` as a float if it is a finite number from 1 to 3600; ValueError otherwise."""
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise ValueError(f"{argument} must be a number from {MIN_SPEED:g} to {MAX_SPEED:g} "
                         f"(scenario seconds per wall second), got {speed!r}")
    value = float(speed)
    if not (math.isfinite(value) and MIN_SPEED <= value <= MAX_SPEED):
        raise ValueError(f"{argument} must be from {MIN_SPEED:g} (real time) to {MAX_SPEED:g} "
                         f"(an hour a second), got {speed!r}")
    return value


def _aware(argument: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{argument} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(timezone.utc)


def _check_history(
    started_at: datetime, speed: float, pauses: Sequence[Pause],
    speed_changes: Sequence[SpeedChange], stopped_at: datetime | None,
) -> tuple[datetime, float, list[tuple[datetime, datetime | None]], list[SpeedChange],
           datetime | None]:
    start = _aware("started_at", started_at)
    first_speed = check_speed(speed)
    checked_pauses: list[tuple[datetime, datetime | None]] = []
    previous_end: datetime | None = start
    for number, pause in enumerate(pauses, start=1):
        if not isinstance(pause, (tuple, list)) or len(pause) != 2:
            raise ValueError(f"pauses[{number}] must be a pair (paused_at, resumed_at or None)")
        paused_at = _aware(f"pauses[{number}] paused_at", pause[0])
        resumed_at = None if pause[1] is None else _aware(f"pauses[{number}] resumed_at",
                                                          pause[1])
        if previous_end is None:
            raise ValueError(f"pauses[{number}] follows a pause that never ended; only the "
                             "last pause may have resumed_at None")
        if paused_at < previous_end:
            raise ValueError(f"pauses[{number}] starts at {paused_at.isoformat()}, before the "
                             f"drill started or the previous pause ended "
                             f"({previous_end.isoformat()}); pauses must be in order")
        if resumed_at is not None and resumed_at < paused_at:
            raise ValueError(f"pauses[{number}] resumes before it pauses")
        checked_pauses.append((paused_at, resumed_at))
        previous_end = resumed_at
    checked_changes: list[SpeedChange] = []
    previous = start
    for number, change in enumerate(speed_changes, start=1):
        if not isinstance(change, (tuple, list)) or len(change) != 2:
            raise ValueError(f"speed_changes[{number}] must be a pair (from_wall_time, speed)")
        at = _aware(f"speed_changes[{number}] from_wall_time", change[0])
        if at < previous:
            raise ValueError(f"speed_changes[{number}] at {at.isoformat()} is before the drill "
                             "started or the previous change; speed changes must be in order")
        checked_changes.append((at, check_speed(change[1], f"speed_changes[{number}] speed")))
        previous = at
    stop = None if stopped_at is None else _aware("stopped_at", stopped_at)
    if stop is not None and stop < start:
        raise ValueError("stopped_at must not be before started_at")
    return start, first_speed, checked_pauses, checked_changes, stop


def _pieces(
    started_at: datetime, speed: float, pauses: Sequence[Pause], now: datetime, *,
    stopped_at: datetime | None, speed_changes: Sequence[SpeedChange],
) -> tuple[list[tuple[datetime, datetime, float]], datetime, float]:
    """The drill's history up to ``now`` as (from, to, rate) pieces with rate in scenario
    minutes per wall second (0 while paused), plus where the history ends and the rate from
    there on (the speed at ``now`` if running, else 0)."""
    start, first_speed, paused, changes, stop = _check_history(
        started_at, speed, pauses, speed_changes, stopped_at)
    end = max(start, _aware("now", now))
    if stop is not None:
        end = min(end, stop)
    cuts = {start, end}
    cuts.update(t for t, _ in changes if start < t < end)
    for paused_at, resumed_at in paused:
        cuts.update(t for t in (paused_at, resumed_at) if t is not None and start < t < end)
    ordered = sorted(cuts)

    def rate_at(t: datetime) -> float:
        """Scenario minutes per wall second over the span that begins at ``t``."""
        if stop is not None and t >= stop:
            return 0.0
        for paused_at, resumed_at in paused:
            if paused_at <= t and (resumed_at is None or t < resumed_at):
                return 0.0
        current = first_speed
        for at, value in changes:
            if at > t:
                break
            current = value
        return current / 60.0

    pieces = [(a, b, rate_at(a)) for a, b in itertools.pairwise(ordered)]
    tail = 0.0 if (stop is not None and end >= stop) else rate_at(end)
    return pieces, end, tail


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def elapsed_minutes(
    started_at: datetime, speed: float, pauses: Sequence[Pause], now: datetime,
    stopped_at: datetime | None = None, *, speed_changes: Sequence[SpeedChange] = (),
) -> float:
    """Scenario minutes reached at ``now``: wall seconds since ``started_at`` minus the paused
    spans, up to ``stopped_at`` if stopped, times the speed in force, over 60.

    ``speed`` is the speed the drill started at; ``speed_changes`` the later ones, each in
    force from its wall time. 0 before the start."""
    pieces, _, _ = _pieces(started_at, speed, pauses, now, stopped_at=stopped_at,
                           speed_changes=speed_changes)
    return sum(_seconds(b - a) * rate for a, b, rate in pieces)


def wall_time_of(
    elapsed_minutes: float, started_at: datetime, speed: float, pauses: Sequence[Pause],
    now: datetime, *, stopped_at: datetime | None = None,
    speed_changes: Sequence[SpeedChange] = (),
) -> datetime | None:
    """The wall time (UTC) at which scenario minute ``elapsed_minutes`` was first reached, or
    will be reached if the drill keeps running at its speed at ``now``; None if it has not
    been reached and the drill is paused or stopped at ``now``."""
    if isinstance(elapsed_minutes, bool) or not isinstance(elapsed_minutes, (int, float)) or \
            not math.isfinite(elapsed_minutes) or elapsed_minutes < 0:
        raise ValueError(f"elapsed_minutes must be a finite number >= 0, got {elapsed_minutes!r}")
    pieces, end, tail = _pieces(started_at, speed, pauses, now, stopped_at=stopped_at,
                                speed_changes=speed_changes)
    reached = 0.0
    start = _aware("started_at", started_at)
    if elapsed_minutes <= 0:
        return start
    for a, b, rate in pieces:
        if rate <= 0:
            continue
        gained = _seconds(b - a) * rate
        if reached + gained >= elapsed_minutes:
            return min(b, a + timedelta(seconds=(elapsed_minutes - reached) / rate))
        reached += gained
    if tail <= 0:
        return None
    return end + timedelta(seconds=(elapsed_minutes - reached) / tail)


def is_paused(pauses: Sequence[Pause], now: datetime) -> bool:
    """Whether a pause covers ``now`` (from its paused_at, until its resumed_at)."""
    moment = _aware("now", now)
    return any(_aware("paused_at", p) <= moment and (r is None or moment < _aware("resumed_at", r))
               for p, r in pauses)


def current_speed(speed: float, speed_changes: Sequence[SpeedChange], now: datetime) -> float:
    """The speed in force at ``now``: the last change at or before it, else the first speed."""
    moment = _aware("now", now)
    current = check_speed(speed)
    for at, value in speed_changes:
        if _aware("from_wall_time", at) <= moment:
            current = check_speed(value)
    return current
