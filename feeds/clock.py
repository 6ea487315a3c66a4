"""Feed clocks: how far a source's clock is off ours, and on which clock its expiries count.

Every time a feed gives (sent, effective, expires, updated, the HTTP ``Date``) is on the
feed's clock, which can be wrong by hours. Pure functions, unit-tested; the poller applies
them to each poll, the store keeps the result in the source's health row.

The rule (also in the README's "Hazard feeds" section):

* **Data age is ours.** A snapshot's age is our clock minus the time we received it (the
  poll's ``now``), never anything the feed claims.
* **Skew is measured per poll** as the server's time at the answer (HTTP ``Date`` plus
  ``Age``, the seconds a cache held it) minus our receive time: negative when the feed's
  clock is behind ours, positive when ahead. Without a ``Date`` header, a newest message
  dated more than :data:`SKEW_TOLERANCE_S` in the future measures it (a message cannot have
  been sent later than now). A skew beyond the tolerance is shown ("clock 3 h behind").
* **A feed behind ours is judged on its own clock.** Its expiries are checked at
  ``now - lag``, the lag being how far behind it is; otherwise an alert the feed still
  lists as in force would look expired to us and vanish, hiding the members inside it. The
  lag is at most the age of the feed's newest message (a clock is at least as late as the
  newest message it stamped), so a wrong ``Date`` over a right payload keeps little or
  nothing past its expiry.
* **A feed ahead of ours is judged on our clock.** Nothing is dropped earlier than our own
  clock says; future-dated messages are kept and shown with the times the feed gave. At
  worst an alert stays up to the skew longer while the feed is down (the next answer of the
  feed replaces the snapshot anyway).

So a measured skew can only keep a hazard on screen longer, never take one off early: a
wrong measurement cannot hide anyone.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

SKEW_TOLERANCE_S = 300.0   # below this a difference of clocks is noise (Date has 1 s steps,
                           # a poll takes seconds, caches add their Age): not shown, not used


def _require_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def server_time(date: str | None, age: str | None = None) -> datetime | None:
    """The server's clock when it answered: the HTTP ``Date`` plus ``Age`` (whole seconds
    a cache held the answer), in UTC; None when ``Date`` is missing or not an HTTP date."""
    if not date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(date.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when
    if age and age.strip().isdigit():
        when += timedelta(seconds=min(int(age.strip()), 86_400))
    return when.astimezone(timezone.utc)


def newest_sent(times: Iterable[datetime | None]) -> datetime | None:
    """The latest of ``times`` (the ``sent`` of a payload's messages), None if there is none."""
    present = [t for t in times if t is not None]
    return max(present) if present else None


def measure_skew(server: datetime | None, newest: datetime | None, *,
                 now: datetime) -> float | None:
    """Seconds the feed's clock is ahead of ours at ``now`` (negative: behind), or None.

    ``server`` (:func:`server_time` of the main answer) when known; else the newest
    message's date when it is more than :data:`SKEW_TOLERANCE_S` in the future (a lower
    bound of how far ahead the feed is); else unmeasured.
    """
    _require_aware("now", now)
    if server is not None:
        _require_aware("server", server)
        return (server - now).total_seconds()
    if newest is not None:
        _require_aware("newest", newest)
        ahead = (newest - now).total_seconds()
        if ahead > SKEW_TOLERANCE_S:
            return ahead
    return None


def expiry_lag(skew_s: float | None, newest: datetime | None, *, now: datetime) -> float:
    """Seconds behind ``now`` at which the feed's expiries are judged (0: on our clock).

    How far behind the feed's clock is (``-skew_s``), at most the age of its newest message;
    0 when the feed is not behind by more than :data:`SKEW_TOLERANCE_S`, or is ahead.
    """
    _require_aware("now", now)
    if skew_s is None or skew_s >= -SKEW_TOLERANCE_S:
        return 0.0
    behind = -skew_s
    if newest is not None:
        _require_aware("newest", newest)
        behind = min(behind, max(0.0, (now - newest).total_seconds()))
    return behind if behind > SKEW_TOLERANCE_S else 0.0


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    if seconds < 172_800:
        hours = seconds / 3600
        return f"{hours:.0f} h" if hours >= 10 else f"{hours:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.0f} days"


def describe_skew(skew_s: float | None) -> str | None:
    """"clock 3 h behind" / "clock 5 h ahead" when the skew is beyond the tolerance."""
    if skew_s is None or abs(skew_s) <= SKEW_TOLERANCE_S:
        return None
    return f"clock {_span(skew_s)} {'ahead' if skew_s > 0 else 'behind'}"
