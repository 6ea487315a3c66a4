"""Overview: incidents ranked by impact, a map of the hazards, filters, and feed health.

No personal data on this page (it is fit for the wall display's role): residences only as
counts per H3 cell, missions as public facts, hazards with counts.

One callback refreshes the page every minute and whenever a filter changes. It re-sends the
map only when what the map shows has changed (new hazards, a new roster, other filters), so a
screen left open all week costs a few kilobytes a minute.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import dash
import flask
import pandas as pd
from dash import ALL, Input, Output, State, dcc, html

from dashboard import auth, components, figures, ids
from dashboard.services import Overview, Services, current, overview
from feeds.model import CATEGORIES, SEVERITIES, SOURCES
from layers.affected import Filters
from layers.schema import JURISDICTIONS, OFM_OFFICES
from store.users import role_rank

# Aggregates only (counts, H3 cell counts, public mission facts): fit for the wall display.
dash.register_page(__name__, path="/", title="Mission Watch - overview", name="Overview",
                   min_role="display")

REFRESH_MS = 60_000
PANEL_ROWS = 40        # incidents listed in the panel (the rest are counted)
FILTERS = (            # (filter name, component id, label)
    ("categories", ids.OVERVIEW_FILTER_CATEGORY, "Category"),
    ("severities", ids.OVERVIEW_FILTER_SEVERITY, "Severity"),
    ("sources", ids.OVERVIEW_FILTER_SOURCE, "Source"),
    ("jurisdictions", ids.OVERVIEW_FILTER_JURISDICTION, "Jurisdiction"),
    ("offices", ids.OVERVIEW_FILTER_OFFICE, "OFM office"),
    ("countries", ids.OVERVIEW_FILTER_COUNTRY, "Sending country"),
)


def _can_open_incidents() -> bool:
    if not flask.has_request_context():
        return False
    principal = auth.current_principal()
    return principal is not None and role_rank(principal.role) >= role_rank("coordinator")


def _filter_options(services: Services) -> dict[str, list[dict[str, str]]]:
    countries = services.roster().missions.drop_duplicates("country_code").sort_values(
        "country_name")
    return {
        "categories": [{"label": c.replace("_", " "), "value": c} for c in CATEGORIES],
        "severities": [{"label": s, "value": s} for s in SEVERITIES],
        "sources": [{"label": s.upper(), "value": s} for s in SOURCES],
        "jurisdictions": [{"label": j, "value": j} for j in JURISDICTIONS],
        "offices": [{"label": f"{c} {n}", "value": c} for c, n in OFM_OFFICES.items()],
        "countries": [{"label": str(n), "value": str(c)} for c, n in
                      zip(countries["country_code"], countries["country_name"], strict=True)],
    }


def _status(data: Overview, services: Services) -> list:
    view = services.roster_view()
    label = f"Roster: {view.source}"
    if view.synthetic:
        label += " — SYNTHETIC DEMO DATA: names, phones and e-mails are fake"
    recorded = [f"{h.source.upper()} ({h.recorded_at:%Y-%m-%d})" for h in data.health
                if h.recorded]
    out: list = []
    if recorded:
        out.append(html.Div("RECORDED FEED DATA, NOT LIVE: " + ", ".join(recorded),
                            id=ids.OVERVIEW_RECORDED, className="recorded-banner"))
    eastern = components.when(data.now)
    out.append(html.Div([
        html.Span(label, id=ids.OVERVIEW_ROSTER_LABEL,
                  className="roster-label synthetic" if view.synthetic else "roster-label"),
        html.Span(f"Updated {data.now:%Y-%m-%d %H:%M:%S} UTC ({eastern})",
                  id=ids.OVERVIEW_UPDATED, className="updated"),
    ], className="status-line"))
    out.append(components.health_strip(data.health, ids.OVERVIEW_FEEDS))
    if data.rules_problem:
        out.append(html.Div(data.rules_problem, className="notice-bar danger"))
    out.append(_empty_state(data))
    return out


def _empty_state(data: Overview) -> html.Div:
    """Say plainly what an empty panel means: quiet, filtered, or blind (feeds down)."""
    down = [h.source.upper() for h in data.health if components.feed_down(h)]
    if down:
        text = (f"Feeds down or stale: {', '.join(down)}. Hazards from them may be missing: "
                "an empty list is NOT an all-clear.")
        return html.Div(text, id=ids.OVERVIEW_EMPTY, className="notice-bar danger")
    if data.active == 0:
        return html.Div("No active hazards. Every feed is reporting.", id=ids.OVERVIEW_EMPTY,
                        className="notice-bar calm")
    if data.incidents.empty:
        text = (f"No incidents match: {len(data.hazards):,} active hazard(s) pass the filters, "
                "none of them an incident under the incident rules."
                if len(data.hazards) else
                f"No active hazard matches the filters ({data.active:,} active in all).")
        return html.Div(text, id=ids.OVERVIEW_EMPTY, className="notice-bar")
    return html.Div(id=ids.OVERVIEW_EMPTY, hidden=True)


def _kpis(data: Overview, services: Services) -> list:
    totals, stats = data.totals, services.roster_view().stats
    return [
        components.kpi("Incidents", totals["incidents"]),
        components.kpi("Incidents affecting missions", totals["affecting"], "alert"),
        components.kpi(f"Missions affected (of {stats['missions']:,})", totals["missions"],
                       "alert"),
        components.kpi(f"Members and dependents affected (of {stats['people']:,})",
                       totals["people"], "alert"),
        components.kpi("Affected with immunity", totals["with_immunity"]),
        components.kpi("Active hazards, all feeds", data.active),
    ]


def _incident_row(row: Any, can_open: bool) -> html.Div:
    expires = components.when(row.expires) or "no expiry"
    title = row.event + (" (recorded)" if not pd.isna(row.recorded_at) else "")
    if row.status != "actual":
        title += f" [{row.status.upper()}]"
    head: list = [components.severity_badge(row.severity), " "]
    head.append(dcc.Link(title, href=f"/incident/{row.key}", className="incident-link")
                if can_open else html.Span(title, className="incident-title"))
    return html.Div([
        html.Div(head, className="incident-head"),
        html.Div(row.area_desc[:140], className="incident-area muted"),
        html.Div([
            html.Span(f"{row.missions:,} missions", className="count"),
            html.Span(f"{row.people:,} people", className="count"),
            html.Span(f"{row.with_immunity:,} with immunity", className="count"),
            html.Span(f"{row.source.upper()} · expires {expires}", className="muted"),
        ], className="incident-counts"),
    ], className="incident-row")


def _panel(data: Overview, show_hidden: bool, can_open: bool) -> tuple[list, list]:
    """The incidents panel and the selection checklist's options."""
    incidents = data.incidents
    shown = incidents.head(PANEL_ROWS)
    options = [{"label": _incident_row(row, can_open), "value": row.key}
               for row in shown.itertuples(index=False)]
    more = len(incidents) - len(shown)
    panel: list = [html.H2(f"Incidents ({len(incidents):,}), most people affected first")]
    if more > 0:
        panel.append(html.P(f"{more:,} more incident(s) affect fewer people: narrow the "
                            "filters to see them.", className="muted"))
    hidden = data.hazards[~data.hazards["incident"]]
    if show_hidden and len(hidden):
        rows = [html.Div([
            html.Div([components.severity_badge(r.severity), " ",
                      dcc.Link(r.event, href=f"/incident/{r.key}") if can_open
                      else html.Span(r.event)], className="incident-head"),
            html.Div(f"{r.area_desc[:100]} — not an incident: {r.reason}",
                     className="incident-area muted"),
            html.Div(f"{r.missions:,} missions · {r.people:,} people",
                     className="incident-counts"),
        ], className="incident-row hidden-hazard") for r in hidden.head(PANEL_ROWS).itertuples()]
        tail = len(hidden) - len(rows)
        hidden_block = [html.H3(f"Not incidents under the rules ({len(hidden):,})"), *rows]
        if tail > 0:
            hidden_block.append(html.P(f"and {tail:,} more", className="muted"))
        panel.append(html.Div(hidden_block, id=ids.OVERVIEW_HIDDEN))
    elif len(hidden):
        panel.append(html.P(f"{len(hidden):,} active hazard(s) are not incidents under the "
                            "incident rules: tick 'Show hazards the rules filter out'.",
                            className="muted", id=ids.OVERVIEW_HIDDEN))
    return panel, options


def _map_key(data: Overview, drawn: pd.DataFrame, filters: Filters) -> str:
    digest = hashlib.sha256(repr((data.state_key, tuple(drawn["hazard_id"]), filters.countries,
                                  filters.jurisdictions, filters.offices)).encode())
    return digest.hexdigest()[:24]


def _map_figure(data: Overview, drawn: pd.DataFrame, filters: Filters,
                services: Services) -> Any:
    view = services.roster_view()
    missions = view.missions
    if filters.by_location:
        keep = pd.Series(True, index=missions.index)
        if filters.jurisdictions:
            keep &= missions["jurisdiction"].isin(filters.jurisdictions)
        if filters.offices:
            keep &= missions["ofm_office"].isin(filters.offices)
        if filters.countries:
            codes = services.roster().missions.set_index("mission_id")["country_code"]
            keep &= missions["mission_id"].map(codes).isin(filters.countries)
        missions = missions[keep]
    state = services.hazard_state()
    shapes = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": h, "properties": {}, "geometry": state.display[h]}
        for h in drawn["hazard_id"] if h in state.display]}
    return figures.roster_map(missions, view.cell_counts, services.states_geojson,
                              hazards=drawn, hazard_shapes=shapes,
                              cells=services.cells_geojson(), basemap=services.basemap)


def _filters(values: dict[str, Any]) -> Filters:
    return Filters.of(**{name: values.get(name) or () for name, _, _ in FILTERS})


def compute(values: dict[str, Any], show_hidden: bool, map_key: str | None,
            now: datetime | None = None) -> dict[str, Any]:
    """Everything the page shows for these filters at ``now``; the map only when it changed."""
    now = now or datetime.now(timezone.utc)
    services = current()
    filters = _filters(values)
    data = overview(services, now, filters)
    drawn = data.hazards if show_hidden else data.incidents
    key = _map_key(data, drawn, filters)
    panel, options = _panel(data, show_hidden, _can_open_incidents())
    return {
        "status": _status(data, services),
        "kpis": _kpis(data, services),
        "panel": panel,
        "options": options,
        "figure": dash.no_update if key == map_key else _map_figure(data, drawn, filters,
                                                                      services),
        "map_key": key,
    }


def layout(**_query: str) -> html.Div:
    services = current()
    if services.roster_view().version is None:
        return html.Div("The roster is empty: run 'python app.py roster generate' or "
                        "'python app.py roster import'.", className="notice")
    result = compute({}, False, None)
    options = _filter_options(services)
    can_open = _can_open_incidents()
    filter_row = [
        html.Div([html.Label(label, htmlFor=component_id),
                  dcc.Dropdown(id=component_id, options=options[name], multi=True,
                               placeholder="any", persistence=True,
                               persistence_type="session")],
                 className="filter")
        for name, component_id, label in FILTERS
    ]
    filter_row.append(dcc.Checklist(
        id=ids.OVERVIEW_SHOW_HIDDEN, options=[{"label": " Show hazards the rules filter out",
                                               "value": "show"}],
        value=[], persistence=True, persistence_type="session", className="filter-check"))
    # The selection link is there for every role (the clientside callback needs it); only
    # coordinators see it, and the incident page itself checks the role.
    selection = html.A("Tick incidents to work on them together", id=ids.OVERVIEW_OPEN_SELECTED,
                       href="", className="button disabled", hidden=not can_open)
    return html.Div([
        dcc.Store(id=ids.OVERVIEW_VIEW_STORE, data=figures.MAP_VIEWS),
        dcc.Store(id=ids.OVERVIEW_MAP_KEY, data=result["map_key"]),
        html.Div(id=ids.OVERVIEW_VIEW_SINK, hidden=True),
        dcc.Interval(id=ids.OVERVIEW_REFRESH, interval=REFRESH_MS),
        html.Div(result["status"], id=ids.OVERVIEW_STATUS),
        html.Div(filter_row, id=ids.OVERVIEW_FILTERS, className="filters"),
        html.Div(result["kpis"], id=ids.OVERVIEW_KPIS, className="kpis"),
        html.Div([
            html.Div([
                html.Div([html.Span("Map view:", className="muted")] + [
                    html.Button(name, id={"type": ids.OVERVIEW_VIEW_BUTTON, "index": name},
                                className="view-button", n_clicks=0)
                    for name in figures.MAP_VIEWS
                ], id=ids.OVERVIEW_VIEWS, className="views"),
                dcc.Graph(id=ids.OVERVIEW_MAP, figure=result["figure"],
                          config={"displaylogo": False, "scrollZoom": True,
                                  "responsive": True},
                          style={"height": "66vh"}, className="overview-map"),
                html.Div([html.Span("Hazard severity:", className="muted")] + [
                    components.severity_badge(name) for name in figures.SEVERITY_COLOURS
                ] + [html.Span("· missions: dark dots · residences: blue cells",
                               className="muted")], className="legend"),
                html.P("Residences are shown only as counts of people per H3 cell "
                       f"(resolution {services.settings.display_h3_resolution}), never as "
                       "single homes. Hazard outlines are simplified for display; who is "
                       "affected is decided on the exact shapes.", className="privacy-note"),
            ], className="map-column"),
            html.Div([
                html.Div(result["panel"], id=ids.OVERVIEW_PANEL),
                dcc.Checklist(id=ids.OVERVIEW_SELECT, options=result["options"], value=[],
                              className="incident-list", labelClassName="incident-option"),
                selection,
            ], className="incident-column"),
        ], className="overview-main"),
        _roster_tables(services),
    ])


def _roster_tables(services: Services) -> html.Details:
    stats = services.roster_view().stats
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
    return html.Details([
        html.Summary(f"Roster: {stats['missions']:,} missions, {stats['people']:,} members "
                     f"and dependents ({stats['with_immunity']:,} with immunity) in "
                     f"{stats['jurisdictions']} jurisdictions"),
        html.Div([
            html.Div([html.H2("By jurisdiction"), html.Table(
                [html.Thead(html.Tr([html.Th("Jurisdiction"), html.Th("Missions"),
                                     html.Th("People"), html.Th("With immunity")])),
                 html.Tbody(jurisdiction_rows)], id=ids.OVERVIEW_JURISDICTIONS,
                className="counts")]),
            html.Div([html.H2("By OFM office"), html.Table(
                [html.Thead(html.Tr([html.Th("Office"), html.Th("Missions"),
                                     html.Th("People")])),
                 html.Tbody(offices)], className="counts")]),
        ], className="tables"),
    ], className="roster-tables")


@auth.callback(
    "display",
    Output(ids.OVERVIEW_STATUS, "children"), Output(ids.OVERVIEW_KPIS, "children"),
    Output(ids.OVERVIEW_PANEL, "children"), Output(ids.OVERVIEW_SELECT, "options"),
    Output(ids.OVERVIEW_MAP, "figure"), Output(ids.OVERVIEW_MAP_KEY, "data"),
    Input(auth.passive_input(ids.OVERVIEW_REFRESH), "n_intervals"),
    *(Input(component_id, "value") for _, component_id, _ in FILTERS),
    Input(ids.OVERVIEW_SHOW_HIDDEN, "value"),
    State(ids.OVERVIEW_MAP_KEY, "data"),
    prevent_initial_call=True,
)
def refresh(_n: int | None, *args: Any) -> tuple:
    *values, show_hidden, map_key = args
    result = compute({name: value for (name, _, _), value in zip(FILTERS, values, strict=True)},
                     bool(show_hidden), map_key)
    return (result["status"], result["kpis"], result["panel"], result["options"],
            result["figure"], result["map_key"])


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
    State(ids.OVERVIEW_VIEW_STORE, "data"),
    prevent_initial_call=True,
)

# The ticked incidents open together on one incident page (a browser-only view change).
dash.clientside_callback(
    """
    function (keys) {
        const picked = (keys || []).filter(Boolean);
        if (!picked.length) {
            return ['', 'button disabled', 'Tick incidents to work on them together'];
        }
        const href = '/incident/' + picked.join(',');
        return [href, 'button', 'Work on the ' + picked.length + ' ticked incident(s) together'];
    }
    """,
    Output(ids.OVERVIEW_OPEN_SELECTED, "href"), Output(ids.OVERVIEW_OPEN_SELECTED, "className"),
    Output(ids.OVERVIEW_OPEN_SELECTED, "children"),
    Input(ids.OVERVIEW_SELECT, "value"),
    prevent_initial_call=True,
)
