"""Overview: hazards, the roster on a map (aggregated), feed health and what is affected.

No personal data on this page: residences only as counts per H3 cell, hazards with counts.
The content re-renders every minute from the store, so new feed data appears without a reload.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dash
import pandas as pd
from dash import ALL, Input, Output, dcc, html

from dashboard import auth, figures, ids
from dashboard.services import current, hazard_view
from layers.schema import OFM_OFFICES

# Aggregates only (counts, H3 cell counts, public mission facts): fit for the wall display.
dash.register_page(__name__, path="/", title="Mission Watch - overview", name="Overview",
                   min_role="display")

REFRESH_MS = 60_000
HAZARD_ROWS = 25


def _kpi(label: str, value: int, kind: str = "") -> html.Div:
    return html.Div([html.Div(f"{value:,}", className="kpi-value"),
                     html.Div(label, className="kpi-label")], className=f"kpi {kind}".strip())


def _age(delta: timedelta | None) -> str:
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


def _health_strip(health: list) -> html.Div:
    items = []
    for feed in health:
        if feed.recorded:
            state, css = f"RECORDED {feed.recorded_at:%Y-%m-%d}", "feed recorded"
            if feed.last_outcome == "failed":
                state += ", live feed unreachable"
        elif feed.last_outcome is None:
            state, css = "not polled yet, no data", "feed stale"
        elif feed.last_success is None:
            state, css = "NO DATA: every poll failed", "feed stale"
        elif feed.stale:
            state, css = f"STALE, data {_age(feed.data_age)} old", "feed stale"
        elif feed.last_outcome == "failed":
            state, css = f"last poll failed, data {_age(feed.data_age)} old", "feed warn"
        else:
            state, css = f"live, {_age(feed.data_age)} old", "feed ok"
        title = feed.last_error or ""
        items.append(html.Div([html.B(feed.source.upper()), html.Span(f" {state}"),
                               html.Span(f" · {feed.item_count:,} items", className="muted")],
                              className=css, title=title))
    return html.Div(items, id=ids.OVERVIEW_FEEDS, className="feeds")


def _hazard_table(table: pd.DataFrame) -> html.Table:
    rows = []
    for row in table.head(HAZARD_ROWS).itertuples(index=False):
        expires = "" if row.expires is None or pd.isna(row.expires) else \
            f"{row.expires:%Y-%m-%d %H:%M} UTC"
        label = row.event + (" (recorded)" if row.recorded_at is not None else "")
        if row.status != "actual":
            label += f" [{row.status.upper()}]"
        rows.append(html.Tr([
            html.Td(html.Span(row.severity, className=f"sev sev-{row.severity}")),
            html.Td(label), html.Td(row.source), html.Td(row.area_desc[:80]),
            html.Td(expires), html.Td(f"{row.missions:,}"), html.Td(f"{row.people:,}"),
            html.Td(f"{row.with_immunity:,}"),
        ]))
    return html.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("Severity", "Event", "Source", "Area",
                                                 "Expires", "Missions", "People",
                                                 "With immunity")])),
        html.Tbody(rows),
    ], id=ids.OVERVIEW_HAZARDS, className="counts hazards")


def render(now: datetime | None = None) -> list:
    """The page's content at ``now`` (default: the current time)."""
    now = now or datetime.now(timezone.utc)
    services = current()
    view = services.roster_view()
    stats = view.stats
    if view.version is None:
        return [html.Div("The roster is empty: run 'python app.py roster generate' or "
                         "'python app.py roster import'.", className="notice")]
    hazards = hazard_view(services, now)
    affecting = hazards.hazards[hazards.hazards["people"] + hazards.hazards["missions"] > 0]
    label = f"Roster: {view.source}"
    if view.synthetic:
        label += " — SYNTHETIC DEMO DATA: names, phones and e-mails are fake"
    recorded = [f"{h.source.upper()} ({h.recorded_at:%Y-%m-%d})" for h in hazards.health
                if h.recorded]
    banner = []
    if recorded:
        banner = [html.Div("RECORDED FEED DATA, NOT LIVE: " + ", ".join(recorded),
                           id=ids.OVERVIEW_RECORDED, className="recorded-banner")]
    jurisdiction_rows = [
        html.Tr([html.Td(code), html.Td(f"{row['missions']:,}"), html.Td(f"{row['people']:,}"),
                 html.Td(f"{row['with_immunity']:,}")])
        for code, row in stats["by_jurisdiction"].items()
    ]
    offices = [
        html.Tr([html.Td(OFM_OFFICES[code]), html.Td(f"{row['missions']:,}"),
                 html.Td(f"{row['people']:,}")])
        for code, row in stats["by_ofm_office"].items()
    ]
    return [
        *banner,
        html.Div([html.Span(label, id=ids.OVERVIEW_ROSTER_LABEL,
                            className="roster-label synthetic" if view.synthetic
                            else "roster-label"),
                  html.Span(f"Updated {now:%Y-%m-%d %H:%M:%S} UTC", className="updated")],
                 className="status-line"),
        _health_strip(hazards.health),
        html.Div([
            _kpi("Active hazards", len(hazards.hazards)),
            _kpi("Hazards affecting missions or people", len(affecting), "alert"),
            _kpi("Missions", stats["missions"]),
            _kpi("Members and dependents", stats["people"]),
            _kpi("With immunity", stats["with_immunity"]),
            _kpi("Jurisdictions", stats["jurisdictions"]),
        ], id=ids.OVERVIEW_KPIS, className="kpis"),
        html.Div([html.Span("Map view:", className="muted")] + [
            html.Button(name, id={"type": ids.OVERVIEW_VIEW_BUTTON, "index": name},
                        className="view-button", n_clicks=0)
            for name in figures.MAP_VIEWS
        ], id=ids.OVERVIEW_VIEWS, className="views"),
        dcc.Graph(
            id=ids.OVERVIEW_MAP,
            figure=figures.roster_map(view.missions, view.cell_counts, services.states_geojson,
                                      hazards.hazards, hazards.shapes),
            config={"displaylogo": False, "scrollZoom": True, "responsive": True},
            style={"height": "62vh"},
            className="overview-map",
        ),
        html.P("Residences are shown only as counts of people per H3 cell "
               f"(resolution {services.settings.display_h3_resolution}), never as single homes.",
               className="privacy-note"),
        html.H2("Active hazards, most people affected first"),
        _hazard_table(hazards.hazards),
        html.Div([
            html.Div([html.H2("Roster by jurisdiction"), html.Table(
                [html.Thead(html.Tr([html.Th("Jurisdiction"), html.Th("Missions"),
                                     html.Th("People"), html.Th("With immunity")])),
                 html.Tbody(jurisdiction_rows)], id=ids.OVERVIEW_JURISDICTIONS,
                className="counts")]),
            html.Div([html.H2("Roster by OFM office"), html.Table(
                [html.Thead(html.Tr([html.Th("Office"), html.Th("Missions"),
                                     html.Th("People")])),
                 html.Tbody(offices)], className="counts")]),
        ], className="tables"),
    ]


def layout(**_query: str) -> html.Div:
    return html.Div([
        dcc.Store(id=ids.OVERVIEW_VIEW_STORE, data=figures.MAP_VIEWS),
        html.Div(id=ids.OVERVIEW_VIEW_SINK, hidden=True),
        dcc.Interval(id=ids.OVERVIEW_REFRESH, interval=REFRESH_MS),
        html.Div(render(), id=ids.OVERVIEW_CONTENT),
    ])


@auth.callback("display", Output(ids.OVERVIEW_CONTENT, "children"),
               Input(auth.passive_input(ids.OVERVIEW_REFRESH), "n_intervals"),
               prevent_initial_call=True)
def refresh(_n: int) -> list:
    return render()


# Moving the map is a pure view change: it runs in the browser and sends nothing to the server.
dash.clientside_callback(
    """
    function (clicks, views) {
        const ctx = window.dash_clientside.callback_context;
        if (!ctx.triggered.length || !ctx.triggered[0].value) {
            return window.dash_clientside.no_update;
        }
        const name = JSON.parse(ctx.triggered[0].prop_id.split('.')[0]).index;
        const view = views[name];
        const graph = document.querySelector('#__MAP__ .js-plotly-plot');
        if (view && graph) {
            Plotly.relayout(graph, {'map.center': {lat: view[0], lon: view[1]},
                                    'map.zoom': view[2]});
        }
        return name;
    }
    """.replace("__MAP__", ids.OVERVIEW_MAP),
    Output(ids.OVERVIEW_VIEW_SINK, "children"),
    Input({"type": ids.OVERVIEW_VIEW_BUTTON, "index": ALL}, "n_clicks"),
    dash.State(ids.OVERVIEW_VIEW_STORE, "data"),
    prevent_initial_call=True,
)
