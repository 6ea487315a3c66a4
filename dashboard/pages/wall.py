"""Wall display (``/wall``): the operations centre's screen that nobody has to touch.

Dark, high contrast, sized in viewport units so it reads the same across a room at 1920x1080
and at 3840x2160. Aggregates only (display role): incidents with counts, affected people as
counts per H3 cell on server-rendered maps, outreach progress as totals.

The server callback runs every ``wall_refresh_s`` and sends what changed; the maps (SVG
images named by their data version) only when the data changed. Everything that must keep
going when the server does not -- the clocks, the rotation of close-ups, the "connection lost
since" warning -- runs in the browser (``assets/wall.js``), so a restart or a network drop
shows up on the screen and heals by itself on the next successful update.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash
import pandas as pd
from dash import ClientsideFunction, Input, Output, State, dcc, html

from dashboard import auth, components, ids, svgmap
from dashboard import wall as wall_data
from dashboard.services import current

dash.register_page(__name__, path="/wall", title="Mission Watch - wall display",
                   name="Wall display", min_role="display")

LIST_ROWS = 4     # incidents listed (the rest are counted): what fits without scrolling

# (label, IANA zone) of the clocks, west to east as a coordinator reads them.
CLOCKS = (
    ("Eastern", "America/New_York"), ("Central", "America/Chicago"),
    ("Mountain", "America/Denver"), ("Pacific", "America/Los_Angeles"),
    ("Alaska", "America/Anchorage"), ("Hawaii", "Pacific/Honolulu"),
    ("Atlantic (PR)", "America/Puerto_Rico"), ("Chamorro (GU)", "Pacific/Guam"),
    ("Samoa (AS)", "Pacific/Pago_Pago"), ("Marshall Is.", "Pacific/Majuro"),
)
INSET_LABELS = {"alaska": "Alaska", "hawaii": "Hawaii", "puerto_rico": "Puerto Rico & USVI",
                "guam": "Guam", "american_samoa": "American Samoa",
                "marshall_islands": "Marshall Islands"}


def _banners(wall: wall_data.Wall) -> list:
    data = wall.overview
    out: list = []
    if wall.exercise:
        out.append(html.Div(["EXERCISE", html.Span(" — a drill is running: " +
                                                   "; ".join(wall.exercise[:3]))],
                            className="wall-banner exercise", id=ids.WALL_EXERCISE))
    down = [h.source.upper() for h in data.health if components.feed_down(h)]
    if down:
        out.append(html.Div(
            f"FEED DOWN: {', '.join(down)} — hazards from {'it' if len(down) == 1 else 'them'}"
            " may be missing. No alerts is NOT all clear.",
            className="wall-banner danger", id=ids.WALL_STALE))
    recorded = [f"{h.source.upper()} {h.recorded_at:%Y-%m-%d}" for h in data.health
                if h.recorded]
    if recorded:
        out.append(html.Div("RECORDED FEED DATA, NOT LIVE: " + ", ".join(recorded),
                            className="wall-banner recorded"))
    if data.rules_problem:
        out.append(html.Div("Incident rules invalid: every hazard is shown as an incident.",
                            className="wall-banner danger"))
    return out


def _kpis(wall: wall_data.Wall) -> list:
    totals, stats = wall.overview.totals, current().roster_view().stats
    reach = wall.outreach
    if reach.boards:
        outreach = html.Div([
            html.Div(f"{reach.missions_reached:,} / {reach.missions_total:,}",
                     className="wall-kpi-value"),
            html.Div("missions reached", className="wall-kpi-label"),
            html.Div(f"households {reach.households_reached:,} / {reach.households_total:,}"
                     + (f" · {reach.needs_assistance:,} need assistance"
                        if reach.needs_assistance else ""), className="wall-kpi-sub"),
        ], className="wall-kpi" + (" alert" if reach.needs_assistance else ""),
            id=ids.WALL_KPI_OUTREACH)
    else:
        outreach = html.Div([html.Div("—", className="wall-kpi-value"),
                             html.Div("no outreach board open", className="wall-kpi-label")],
                            className="wall-kpi", id=ids.WALL_KPI_OUTREACH)
    return [
        _kpi("active hazards", wall.overview.active,
             f"{totals['incidents']:,} incidents", ids.WALL_KPI_HAZARDS),
        _kpi(f"missions affected (of {stats['missions']:,})", totals["missions"],
             f"{totals['affecting']:,} incidents affect missions", ids.WALL_KPI_MISSIONS,
             alert=totals["missions"] > 0),
        _kpi("members and dependents affected", totals["people"],
             f"{totals['with_immunity']:,} with immunity", ids.WALL_KPI_PEOPLE,
             alert=totals["people"] > 0),
        outreach,
    ]


def _kpi(label: str, value: int, sub: str, kpi_id: str, alert: bool = False) -> html.Div:
    return html.Div([html.Div(f"{value:,}", className="wall-kpi-value"),
                     html.Div(label, className="wall-kpi-label"),
                     html.Div(sub, className="wall-kpi-sub")],
                    className="wall-kpi" + (" alert" if alert else ""), id=kpi_id)


def _incident_list(wall: wall_data.Wall) -> list:
    incidents = wall.incidents
    if incidents.empty:
        down = any(components.feed_down(h) for h in wall.overview.health)
        text = ("No incidents listed — but a feed is down, so this is NOT an all-clear."
                if down else "No incidents. Every feed is reporting.")
        return [html.Div(text, className="wall-empty" + (" danger" if down else ""))]
    rows = []
    for row in incidents.head(LIST_ROWS).itertuples(index=False):
        badge = [components.severity_badge(row.severity)]
        if row.new:
            badge.insert(0, html.Span("NEW", className="wall-new-badge"))
        title = row.event + ("" if row.status == "actual" else f" [{row.status.upper()}]")
        detail = f"{row.missions:,} missions · {row.people:,} people"
        if row.new:
            detail += f" · first listed {components.when(row.first_seen)}"
        rows.append(html.Div([
            html.Div([*badge, html.Span(title, className="wall-incident-title")],
                     className="wall-incident-head"),
            html.Div(row.area_desc[:110], className="wall-incident-area"),
            html.Div(detail, className="wall-incident-counts"),
        ], className="wall-incident" + (" new" if row.new else "")))
    more = len(incidents) - len(rows)
    if more > 0:
        rows.append(html.Div(f"and {more:,} more incident(s)", className="wall-more"))
    return rows


def _feeds(wall: wall_data.Wall) -> list:
    items = []
    for feed in wall.overview.health:
        state, css = components.feed_state(feed)
        items.append(html.Div([html.B(feed.source.upper()), html.Span(f" {state}")],
                              className="wall-" + css.replace(" ", " wall-")))
    return items


def _maps(wall: wall_data.Wall) -> list:
    insets = [html.Figure([
        html.Img(src=wall_data.map_url(wall, name), alt=f"{label}: hazards and affected "
                 "people per cell"),
        html.Figcaption(label),
    ], className="wall-inset") for name, label in INSET_LABELS.items()]
    return [
        html.Img(src=wall_data.map_url(wall, "conus"), className="wall-national",
                 alt="Contiguous United States: hazards and affected people per cell"),
        html.Div(insets, className="wall-insets"),
    ]


def _closeups(wall: wall_data.Wall) -> list[dict[str, Any]]:
    table = wall.incidents.set_index("key")
    out = []
    for key in wall.closeups:
        row = table.loc[key]
        title = ("NEW · " if row["new"] else "") + f"{row['event']} ({row['severity']})"
        out.append({"key": key, "src": wall_data.map_url(wall, wall_data.CLOSEUP_PREFIX + key),
                    "title": title, "new": bool(row["new"]),
                    "detail": f"{row['area_desc'][:120]} — {int(row['missions']):,} missions, "
                              f"{int(row['people']):,} people, "
                              f"{int(row['with_immunity']):,} with immunity"})
    return out


def _beat(wall: wall_data.Wall) -> dict[str, Any]:
    """What the browser needs each update: the server's clock (the clocks use it, so a wall PC
    with a wrong clock still shows the right time) and the incidents to announce."""
    return {"server_ms": int(wall.now.timestamp() * 1000),
            "updated": f"Updated {components.when(pd.Timestamp(wall.now))}",
            "new": list(wall.new["key"]), "refresh_ms": _refresh_ms()}


def _refresh_ms() -> int:
    return int(current().settings.wall_refresh_s * 1000)


def compute(maps_key: str | None, now: datetime | None = None) -> dict[str, Any]:
    """Everything one update shows; the maps and close-ups only when their data changed."""
    wall = wall_data.snapshot(current(), now)
    changed = wall.maps_key != maps_key
    return {
        "banners": _banners(wall), "kpis": _kpis(wall), "incidents": _incident_list(wall),
        "feeds": _feeds(wall), "beat": _beat(wall),
        "maps": _maps(wall) if changed else dash.no_update,
        "closeups": _closeups(wall) if changed else dash.no_update,
        "maps_key": wall.maps_key,
    }


def _legend() -> html.Div:
    items: list = [html.Span("Severity", className="wall-legend-title")]
    items += [components.severity_badge(name) for name in svgmap.SEVERITY_ORDER[::-1]]
    items.append(html.Span("People affected per cell", className="wall-legend-title"))
    items += [html.Span(label, className="wall-legend-cell", style={"background": colour})
              for label, colour in svgmap.legend_cells(10_000)]
    items.append(html.Span("● affected mission", className="wall-legend-mission"))
    return html.Div(items, className="wall-legend")


def layout(**_query: str) -> html.Div:
    services = current()
    if services.roster_view().version is None:
        return html.Div("The roster is empty: run 'python app.py roster generate' or "
                        "'python app.py roster import'.", className="notice")
    settings = services.settings
    result = compute(None)
    return html.Div([
        dcc.Interval(id=ids.WALL_REFRESH, interval=_refresh_ms()),
        dcc.Interval(id=ids.WALL_TICK, interval=1000),
        dcc.Interval(id=ids.WALL_ROTATE, interval=int(settings.wall_rotate_s * 1000)),
        dcc.Store(id=ids.WALL_MAPS_KEY, data=result["maps_key"]),
        dcc.Store(id=ids.WALL_BEAT, data=result["beat"]),
        dcc.Store(id=ids.WALL_CLOSEUPS, data=result["closeups"]),
        dcc.Store(id=ids.WALL_CONFIG, data={"chime": settings.wall_chime,
                                            "clocks": [zone for _, zone in CLOCKS]}),
        html.Div(id=ids.WALL_CONNECTION, className="wall-banner lost", hidden=True),
        html.Div(result["banners"], id=ids.WALL_BANNERS),
        html.Header([
            html.Div([html.Span("MISSION WATCH", className="wall-brand"),
                      html.Span(result["beat"]["updated"], id=ids.WALL_UPDATED,
                                className="wall-updated")], className="wall-title"),
            html.Div([html.Div([html.Div("--:--", id=f"{ids.WALL_CLOCK}-{i}",
                                         className="wall-clock-time"),
                                html.Div(label, className="wall-clock-label")],
                               className="wall-clock")
                      for i, (label, _) in enumerate(CLOCKS)], className="wall-clocks"),
        ], className="wall-header"),
        html.Div(result["kpis"], id=ids.WALL_KPIS, className="wall-kpis"),
        html.Div([
            html.Div([html.Div(result["maps"], id=ids.WALL_MAPS), _legend()],
                     className="wall-map-column"),
            html.Div([
                html.Div([
                    html.Div([html.Span(id=ids.WALL_CLOSEUP_TITLE, className="wall-closeup-title"),
                              html.Span(id=ids.WALL_CLOSEUP_POSITION,
                                        className="wall-closeup-position")],
                             className="wall-closeup-head"),
                    html.Img(id=ids.WALL_CLOSEUP_IMAGE, className="wall-closeup-image",
                             alt="close-up of a top incident"),
                    html.Div(id=ids.WALL_CLOSEUP_DETAIL, className="wall-closeup-detail"),
                ], className="wall-closeup"),
                html.Div(result["incidents"], id=ids.WALL_INCIDENTS, className="wall-incidents"),
            ], className="wall-side"),
        ], className="wall-main"),
        html.Div(result["feeds"], id=ids.WALL_FEEDS, className="wall-feeds"),
    ], className="wall", id=ids.WALL)


@auth.callback(
    "display",
    Output(ids.WALL_BANNERS, "children"), Output(ids.WALL_KPIS, "children"),
    Output(ids.WALL_INCIDENTS, "children"), Output(ids.WALL_FEEDS, "children"),
    Output(ids.WALL_BEAT, "data"), Output(ids.WALL_MAPS, "children"),
    Output(ids.WALL_CLOSEUPS, "data"), Output(ids.WALL_MAPS_KEY, "data"),
    Input(auth.passive_input(ids.WALL_REFRESH), "n_intervals"),
    State(ids.WALL_MAPS_KEY, "data"),
    prevent_initial_call=True,
)
def refresh(_n: int | None, maps_key: str | None) -> tuple:
    result = compute(maps_key)
    return (result["banners"], result["kpis"], result["incidents"], result["feeds"],
            result["beat"], result["maps"], result["closeups"], result["maps_key"])


# In the browser: clocks, the connection watch and the chime (every second)...
dash.clientside_callback(
    ClientsideFunction(namespace="wall", function_name="tick"),
    [Output(f"{ids.WALL_CLOCK}-{i}", "children") for i in range(len(CLOCKS))]
    + [Output(ids.WALL_CONNECTION, "children"), Output(ids.WALL_CONNECTION, "hidden"),
       Output(ids.WALL_UPDATED, "children")],
    Input(ids.WALL_TICK, "n_intervals"), Input(ids.WALL_BEAT, "data"),
    State(ids.WALL_CONFIG, "data"),
)

# ... and the rotation of the top incidents' close-ups.
dash.clientside_callback(
    ClientsideFunction(namespace="wall", function_name="rotate"),
    Output(ids.WALL_CLOSEUP_IMAGE, "src"), Output(ids.WALL_CLOSEUP_TITLE, "children"),
    Output(ids.WALL_CLOSEUP_DETAIL, "children"), Output(ids.WALL_CLOSEUP_POSITION, "children"),
    Output(ids.WALL_CLOSEUP_IMAGE, "className"),
    Input(ids.WALL_ROTATE, "n_intervals"), Input(ids.WALL_CLOSEUPS, "data"),
)
