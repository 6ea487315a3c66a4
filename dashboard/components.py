"""Small pieces shared by the pages: severity badges, ages, times, feed health, KPI tiles."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from dash import html

EASTERN = ZoneInfo("America/New_York")

# The look of every data table (dash_table.DataTable) on the coordinators' pages.
TABLE_STYLE = {"overflowX": "auto"}
CELL_STYLE = {"textAlign": "left", "padding": "4px 8px", "fontSize": "0.9rem",
              "whiteSpace": "normal", "height": "auto", "maxWidth": "22rem"}
HEADER_STYLE = {"fontWeight": "700"}


def page_of(frame: pd.DataFrame, page: int | None, size: int) -> tuple[pd.DataFrame, int, int]:
    """One page of ``frame`` for a server-paged table: (rows, page count, page shown); a page
    past the end shows the last one."""
    pages = max(1, -(-len(frame) // size))
    shown = min(max(0, int(page or 0)), pages - 1)
    return frame.iloc[shown * size:(shown + 1) * size], pages, shown


def severity_badge(severity: str) -> html.Span:
    return html.Span(severity, className=f"sev sev-{severity}")


def kpi(label: str, value: int | str, kind: str = "", kpi_id: str | None = None) -> html.Div:
    shown = f"{value:,}" if isinstance(value, int) else value
    extra = {"id": kpi_id} if kpi_id else {}
    return html.Div([html.Div(shown, className="kpi-value"),
                     html.Div(label, className="kpi-label")],
                    className=f"kpi {kind}".strip(), **extra)


def age(delta: timedelta | None) -> str:
    """A data age a person reads at a glance: "45 s", "12 min", "3 h", "2 days"."""
    if delta is None:
        return "no data"
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def when(value: Any, zone: ZoneInfo = EASTERN) -> str:
    """A time in ``zone`` with its abbreviation ("2026-11-28 03:12 EST"), "" when missing."""
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).tz_convert(zone).strftime("%Y-%m-%d %H:%M %Z")


def feed_state(feed: Any) -> tuple[str, str]:
    """(text, css class) for one feed's health: live, failing, stale, never polled, recorded;
    a live feed whose clock is off ours says so ("live, 2 min old, clock 3 h behind")."""
    text, css = _feed_state(feed)
    clock = None if feed.recorded else getattr(feed, "clock", None)
    if clock:
        return f"{text}, {clock}", "feed warn" if css == "feed ok" else css
    return text, css


def _feed_state(feed: Any) -> tuple[str, str]:
    if feed.recorded:
        state = f"RECORDED {feed.recorded_at:%Y-%m-%d}"
        if feed.last_outcome == "failed":
            state += ", live feed unreachable"
        return state, "feed recorded"
    if feed.last_outcome is None:
        return "not polled yet, no data", "feed stale"
    if feed.last_success is None:
        return "NO DATA: every poll failed", "feed stale"
    if feed.stale:
        return f"STALE, data {age(feed.data_age)} old", "feed stale"
    if feed.last_outcome == "failed":
        return f"last poll failed, data {age(feed.data_age)} old", "feed warn"
    return f"live, {age(feed.data_age)} old", "feed ok"


def feed_down(feed: Any) -> bool:
    """Whether a feed's data cannot be trusted as current (stale, never polled, all failed)."""
    return not feed.recorded and (feed.last_outcome is None or feed.last_success is None
                                  or feed.stale)


def health_strip(health: list[Any], strip_id: str) -> html.Div:
    items = []
    for feed in health:
        state, css = feed_state(feed)
        items.append(html.Div([html.B(feed.source.upper()), html.Span(f" {state}"),
                               html.Span(f" · {feed.item_count:,} items", className="muted")],
                              className=css, title=feed.last_error or ""))
    return html.Div(items, id=strip_id, className="feeds")
