"""Incident page: one hazard, or several worked on together, and everyone they affect.

``/incident/<key>`` or ``/incident/<key1>,<key2>``: the hazards' details (times in US Eastern
and in the local zone of the area, a link to the source), the affected missions in a grid, the
affected people in calling order (grouped by mission and household), and the call-list exports.
Personal data: coordinators and admins only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import dash
import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from dash import Input, Output, State, dash_table, dcc, html

from dashboard import auth, components, downloads, figures, ids
from dashboard.services import (
    IncidentView,
    UnknownIncident,
    current,
    incident_view,
    overview,
    parse_keys,
)
from layers.schema import MISSION_TYPES
from layers.timezones import zones_for_area
from store.outreach import open_board

dash.register_page(__name__, path_template="/incident/<incident_id>", name="Incident",
                   title="Mission Watch - incident", min_role="coordinator", nav=False)

PEOPLE_PAGE_SIZE = 50
MISSION_PAGE_SIZE = 20
PEOPLE_COLUMNS = (   # (call-list column, heading)
    ("order", "#"), ("mission_name", "Mission"), ("contact_kind", "Contact"),
    ("name", "Name"), ("role", "Role"), ("immunity", "Immunity"), ("phone", "Phone"),
    ("email", "E-mail"), ("language", "Lang."), ("household_id", "Household"),
    ("worst_severity", "Worst severity"), ("hazards", "Hazards"),
)
MISSION_COLUMNS = (
    ("name", "Mission"), ("type", "Type"), ("country_name", "Country"), ("city", "City"),
    ("jurisdiction", "Juris."), ("office", "OFM office"), ("premises", "Premises inside"),
    ("people", "People"), ("full", "Full immunity"), ("official_acts", "Official acts"),
    ("none", "No immunity"), ("households", "Households"), ("duty_phone", "Duty phone"),
    ("worst_severity", "Worst severity"), ("hazards", "Hazards"),
)
CONTACT_LABELS = {"duty": "Duty contact", "head_of_household": "Head of household",
                  "household_member": "Household member"}


def _safe_url(url: str) -> str | None:
    """The source link, only when it is plain http(s) (a feed could carry anything)."""
    parts = urlsplit(url or "")
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _zones(hazard_id: str) -> list[str]:
    """The local time zones of a hazard's area, most of the area first (at most three)."""
    stored = current().hazard_state().hazards.get(hazard_id)
    if stored is None:
        return []
    shape = stored.geometry
    if shape is None and stored.radius_km is not None:
        shape = shapely.Point(stored.center_lon, stored.center_lat)
    if shape is None:
        return []
    try:
        return zones_for_area(shape)[:3]
    except ValueError:
        return []


def _times(hazard: Any) -> html.Table:
    """Sent, onset and expiry in US Eastern and in the area's local zone(s)."""
    zones = [z for z in _zones(hazard.hazard_id) if z != "America/New_York"]
    head = [html.Th(""), html.Th("US Eastern")] + [html.Th(f"Local ({z})") for z in zones]
    rows = []
    for label, value in (("Sent", hazard.sent), ("Onset", hazard.onset),
                         ("Expires", hazard.expires)):
        if value is None or pd.isna(value):
            cells = [html.Td("not given" if label != "Expires" else "no expiry given")]
            cells += [html.Td("")] * len(zones)
        else:
            cells = [html.Td(components.when(value))]
            cells += [html.Td(components.when(value, ZoneInfo(z))) for z in zones]
        rows.append(html.Tr([html.Th(label), *cells]))
    return html.Table([html.Thead(html.Tr(head)), html.Tbody(rows)], className="counts times")


def _hazard_card(hazard: Any, now: datetime) -> html.Div:
    link = _safe_url(hazard.url)
    state = "in force" if hazard.active else "ENDED or cancelled: shown for follow-up"
    if not pd.isna(hazard.recorded_at):
        state = f"RECORDED {hazard.recorded_at:%Y-%m-%d}, not live"
    method = {"polygon": "the alert's own polygon", "zone": "its forecast zones",
              "county": "its counties", "": "no area: nobody can be matched"}.get(
                  hazard.geometry_method, hazard.geometry_method)
    status = [] if hazard.status == "actual" else [
        html.Span(f" {hazard.status.upper()}", className="status-flag")]
    return html.Div([
        html.H2([components.severity_badge(hazard.severity), f" {hazard.event}", *status]),
        html.P(hazard.headline, className="headline"),
        html.P([html.B("Area: "), hazard.area_desc or "not given"]),
        html.P([html.B("State: "), state, html.Span(f" · source {hazard.source.upper()}",
                                                    className="muted"),
                html.Span(f" · area from {method}", className="muted")]),
        _times(hazard),
        html.P([html.A("Source bulletin", href=link, target="_blank", rel="noopener noreferrer")
                if link else html.Span("No source link given", className="muted"),
                html.Span(f"  id {hazard.hazard_id}", className="muted mono")]),
        html.P(f"{hazard.missions:,} missions · {hazard.people:,} people "
               f"({hazard.with_immunity:,} with immunity) · {hazard.households:,} households",
               className="hazard-counts"),
    ], className="hazard-card")


def _incident_map(view: IncidentView) -> dcc.Graph:
    """The hazards' areas, the affected missions, affected people as counts per H3 cell."""
    services = current()
    state = services.hazard_state()
    shapes = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": h, "properties": {}, "geometry": state.display[h]}
        for h in view.hazards["hazard_id"] if h in state.display]}
    public = services.roster_view().missions
    missions = public[public["mission_id"].isin(view.missions["mission_id"])]
    figure = figures.roster_map(missions, view.cell_counts, services.states_geojson,
                                hazards=view.hazards, hazard_shapes=shapes,
                                basemap=services.basemap)
    points = [shapely.geometry.shape(f["geometry"]) for f in shapes["features"]]
    if len(missions):
        points.append(shapely.MultiPoint(list(zip(missions["lon"], missions["lat"],
                                                  strict=True))))
    if points:
        center, zoom = figures.view_of_bounds(*shapely.GeometryCollection(points).bounds)
        figure["layout"]["map"].update(center=center, zoom=zoom)
        figure["layout"]["uirevision"] = "incident"
    return dcc.Graph(id=ids.INCIDENT_MAP, figure=figure, style={"height": "52vh"},
                     config={"displaylogo": False, "scrollZoom": True, "responsive": True},
                     className="overview-map")


def _mission_rows(view: IncidentView) -> list[dict[str, Any]]:
    grid = view.missions
    return [{
        "id": row.mission_id, "name": row.name,
        "type": MISSION_TYPES.get(row.mission_type, row.mission_type),
        "country_name": row.country_name, "city": row.city, "jurisdiction": row.jurisdiction,
        "office": row.ofm_office, "premises": "yes" if row.premises else "no",
        "people": int(row.people), "full": int(row.full),
        "official_acts": int(row.official_acts), "none": int(row.none),
        "households": int(row.households), "duty_phone": row.duty_phone,
        "worst_severity": row.worst_severity, "hazards": row.hazards,
    } for row in grid.itertuples(index=False)]


def _selection_options(keys: tuple[str, ...], view: IncidentView) -> list[dict[str, str]]:
    """Current incidents (most people first), plus the ones on this page."""
    data = overview(current(), datetime.now(timezone.utc))
    options = {row.key: f"{row.event} — {row.area_desc[:60]} ({row.people:,} people)"
               for row in data.incidents.head(200).itertuples()}
    for row in view.hazards.itertuples():
        options.setdefault(row.key, f"{row.event} — {row.area_desc[:60]}")
    return [{"label": label, "value": key} for key, label in options.items()]


def _exports(keys: tuple[str, ...], rows: int) -> html.Div:
    joined = ",".join(keys)
    return html.Div([
        html.Button("Start outreach for these incidents", id=ids.INCIDENT_OPEN_BOARD,
                    className="button primary"),
        dcc.Location(id=ids.INCIDENT_BOARD_LOCATION, refresh=True),
        html.Span(f"Call list, {rows:,} rows in calling order:", className="muted"),
        html.A("CSV", href=downloads.calllist_url(joined, "csv"), id=ids.INCIDENT_EXPORT_CSV,
               className="button", download=""),
        html.A("XLSX by OFM office", href=downloads.calllist_url(joined, "xlsx", "office"),
               id=ids.INCIDENT_EXPORT_XLSX, className="button", download=""),
        html.A("XLSX by mission", href=downloads.calllist_url(joined, "xlsx", "mission"),
               id=ids.INCIDENT_EXPORT_XLSX_MISSION, className="button", download=""),
        html.Span("Every export is recorded in the audit log.", className="muted"),
    ], className="exports")


def layout(incident_id: str | None = None, **_query: str) -> html.Div:
    now = datetime.now(timezone.utc)
    back = dcc.Link("← Overview", href="/", className="back")
    try:
        keys = parse_keys(incident_id or "")
        view = incident_view(current(), keys, now)
    except (ValueError, UnknownIncident) as exc:
        return html.Div([back, html.Div(str(exc), id=ids.INCIDENT_ERROR, className="notice")])
    hazards = view.hazards
    title = (hazards.iloc[0]["event"] if len(hazards) == 1
             else f"{len(hazards)} incidents worked on together")
    totals = view.totals
    return html.Div([
        dcc.Store(id=ids.INCIDENT_KEYS, data=list(keys)),
        dcc.Location(id=ids.INCIDENT_LOCATION, refresh=True),
        back,
        html.H1(title, id=ids.INCIDENT_TITLE),
        html.Div([
            html.Label("Incidents on this page (add or remove to work on their union):",
                       htmlFor=ids.INCIDENT_SELECTION),
            dcc.Dropdown(id=ids.INCIDENT_SELECTION, options=_selection_options(keys, view),
                         value=list(keys), multi=True, clearable=False),
        ], className="selection"),
        html.Div([
            components.kpi("Missions affected", totals["missions"], "alert"),
            components.kpi("Mission premises inside", totals["premises"]),
            components.kpi("Members and dependents affected", totals["people"], "alert"),
            components.kpi("With immunity", totals["with_immunity"]),
            components.kpi("Households", totals["households"]),
        ], id=ids.INCIDENT_KPIS, className="kpis"),
        _exports(keys, len(view.calls)),
        html.Div([
            html.Div([_hazard_card(h, now) for h in hazards.itertuples(index=False)],
                     id=ids.INCIDENT_HAZARDS, className="hazard-cards"),
            html.Div(_incident_map(view), className="incident-map"),
        ], className="incident-top"),
        html.H2(f"Affected missions ({len(view.missions):,}), worst severity and most "
                "immune people first"),
        html.P("Sort by a column heading, filter under it; tick a mission to list only its "
               "people below.", className="muted"),
        dash_table.DataTable(
            id=ids.INCIDENT_MISSIONS,
            columns=[{"name": h, "id": c} for c, h in MISSION_COLUMNS],
            data=_mission_rows(view), row_selectable="single", selected_rows=[],
            sort_action="native", filter_action="native", page_action="native",
            page_size=MISSION_PAGE_SIZE, style_table=components.TABLE_STYLE,
            style_cell=components.CELL_STYLE, style_header=components.HEADER_STYLE,
        ),
        html.H2("Affected people, in calling order, by mission and household"),
        html.Div([
            dcc.Input(id=ids.INCIDENT_SEARCH, type="search", debounce=True,
                      placeholder="Search name, phone, e-mail, mission, household…",
                      className="search"),
            html.Span(id=ids.INCIDENT_PEOPLE_COUNT, className="muted"),
        ], className="search-row"),
        dash_table.DataTable(
            id=ids.INCIDENT_PEOPLE,
            columns=[{"name": h, "id": c} for c, h in PEOPLE_COLUMNS],
            data=[], page_action="custom", page_current=0, page_size=PEOPLE_PAGE_SIZE,
            sort_action="custom", sort_mode="single", sort_by=[],
            style_table=components.TABLE_STYLE,
            style_cell=components.CELL_STYLE, style_header=components.HEADER_STYLE,
        ),
    ], className="incident-page")


def people_page(view: IncidentView, *, search: str = "", mission_id: str | None = None,
                sort_by: list[dict[str, str]] | None = None, page: int = 0,
                page_size: int = PEOPLE_PAGE_SIZE) -> tuple[list[dict[str, Any]], int, int]:
    """One page of the call list, searched, narrowed to a mission, sorted: (rows, pages, n)."""
    calls = view.calls
    if mission_id:
        calls = calls[calls["mission_id"] == mission_id]
    words = [w for w in (search or "").lower().split() if w]
    if words:
        text = view.search_text.loc[calls.index]
        keep = np.ones(len(calls), dtype=bool)
        for word in words:
            keep &= text.str.contains(word, regex=False).to_numpy()
        calls = calls[keep]
    if sort_by:
        column = sort_by[0].get("column_id")
        if column in dict(PEOPLE_COLUMNS):
            calls = calls.sort_values([column, "order"],
                                      ascending=[sort_by[0].get("direction") != "desc", True],
                                      kind="stable")
    total = len(calls)
    chunk, pages, _ = components.page_of(calls, page, page_size)
    events = dict(zip(view.hazards["hazard_id"], view.hazards["event"], strict=True))
    rows = []
    for row in chunk.assign(hazards=chunk["hazard_ids"].map(
            lambda ids: "; ".join(sorted({events.get(i, i) for i in str(ids).split(";")
                                          if i})))).itertuples(index=False):
        item = {c: getattr(row, c) for c, _ in PEOPLE_COLUMNS}
        item["order"] = int(item["order"])
        item["contact_kind"] = CONTACT_LABELS.get(item["contact_kind"], item["contact_kind"])
        rows.append({k: ("" if v is None or (isinstance(v, float) and pd.isna(v)) else v)
                     for k, v in item.items()})
    return rows, pages, total


@auth.callback(
    "coordinator",
    Output(ids.INCIDENT_PEOPLE, "data"), Output(ids.INCIDENT_PEOPLE, "page_count"),
    Output(ids.INCIDENT_PEOPLE_COUNT, "children"),
    Input(ids.INCIDENT_PEOPLE, "page_current"), Input(ids.INCIDENT_PEOPLE, "sort_by"),
    Input(ids.INCIDENT_SEARCH, "value"), Input(ids.INCIDENT_MISSIONS, "selected_row_ids"),
    State(ids.INCIDENT_PEOPLE, "page_size"), State(ids.INCIDENT_KEYS, "data"),
)
def show_people(  # noqa: PLR0917 - Dash passes callback values by position
    page: int | None, sort_by: list | None, search: str | None, mission_ids: list | None,
    page_size: int | None, keys: list | None,
) -> tuple:
    try:
        view = incident_view(current(), parse_keys(",".join(keys or [])),
                             datetime.now(timezone.utc))
    except (ValueError, UnknownIncident) as exc:
        return [], 1, str(exc)
    mission = (mission_ids or [None])[0]
    rows, pages, total = people_page(view, search=search or "", mission_id=mission,
                                     sort_by=sort_by, page=page or 0,
                                     page_size=page_size or PEOPLE_PAGE_SIZE)
    scope = f" of mission {mission}" if mission else ""
    return rows, pages, f"{total:,} contact row(s){scope}"


@auth.callback(
    "coordinator",
    Output(ids.INCIDENT_BOARD_LOCATION, "href"),
    Input(ids.INCIDENT_OPEN_BOARD, "n_clicks"), State(ids.INCIDENT_KEYS, "data"),
    prevent_initial_call=True,
)
def start_outreach(clicks: int | None, keys: list | None) -> str:
    """Open (or find) the outreach board for exactly these incidents and go to it."""
    if not clicks:
        raise dash.exceptions.PreventUpdate
    services = current()
    view = incident_view(services, parse_keys(",".join(keys or [])), datetime.now(timezone.utc))
    hazards = view.hazards
    name = "; ".join(f"{e} ({a[:40]})" for e, a in zip(hazards["event"], hazards["area_desc"],
                                                       strict=True))
    board, _ = open_board(services.engine, list(hazards["hazard_id"]), name=name,
                          actor=auth.current_actor(),
                          now=datetime.now(timezone.utc))
    return f"/outreach/{board.board_id}"


@auth.callback(
    "coordinator",
    Output(ids.INCIDENT_LOCATION, "href"),
    Input(ids.INCIDENT_SELECTION, "value"), State(ids.INCIDENT_KEYS, "data"),
    prevent_initial_call=True,
)
def change_selection(selected: list | None, keys: list | None) -> str:
    """Open the page for the new selection (a new URL, so it can be shared and bookmarked)."""
    picked = [k for k in (selected or []) if k]
    if not picked or picked == list(keys or []):
        raise dash.exceptions.PreventUpdate
    return "/incident/" + ",".join(picked)

