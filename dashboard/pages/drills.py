"""Drills (``/drills``, coordinators): the scenario library, starting a drill, and every drill.

A drill plays a scenario's injects on its own clock (real time or faster) as EXERCISE hazards
that live lists, exports and the API never see; each drill has its page (``/drill/<id>``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import dash
from dash import Input, Output, State, dcc, html

from dashboard import auth, components, ids, scenario_library
from dashboard.drills import (
    REPLAY_PREFIX,
    SPEEDS,
    clock_text,
    recorded_replay,
    replayable_sources,
)
from dashboard.services import current
from layers.scenarios import Scenario, ScenarioError, scenario_to_geojson
from store.drills import list_drills, start_drill

dash.register_page(__name__, path="/drills", title="Mission Watch - drills", name="Drills",
                   min_role="coordinator")

def _library_table(library: dict[str, Scenario]) -> html.Table:
    rows = []
    for scenario in library.values():
        authored = " (authored)" if scenario_library.is_authored(scenario) else ""
        rows.append(html.Tr([
            html.Td(scenario.title), html.Td(scenario.name + authored),
            html.Td(", ".join(scenario.jurisdictions)), html.Td(f"{len(scenario.injects)}"),
            html.Td(clock_text(scenario.duration_minutes)),
        ]))
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in (
        "Scenario", "Name", "Jurisdictions", "Injects", "Planned length")])),
        html.Tbody(rows)], className="counts admin", id=ids.DRILLS_LIBRARY)


def _drills_table(now: datetime) -> html.Div:
    drills = list_drills(current().engine)
    if not drills:
        return html.P("No drill has been run yet.", className="muted", id=ids.DRILLS_LIST)
    rows = [html.Tr([
        html.Td(dcc.Link(d.name, href=f"/drill/{d.drill_id}")), html.Td(d.scenario_name),
        html.Td(d.state.upper()), html.Td(clock_text(d.elapsed_minutes(now))),
        html.Td(f"{d.speed:g}x"), html.Td(components.when(d.started_at)), html.Td(d.started_by),
    ]) for d in drills]
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in (
        "Drill", "Scenario", "State", "Scenario time", "Speed", "Started", "By")])),
        html.Tbody(rows)], className="counts admin", id=ids.DRILLS_LIST)


def layout(**_query: str) -> html.Div:
    now = datetime.now(timezone.utc)
    try:
        library = scenario_library.library(current().settings)
        problem = ""
    except ScenarioError as exc:
        library, problem = {}, f"The scenario library cannot be read: {exc}"
    options = [{"label": f"{s.title} ({len(s.injects)} injects)", "value": s.name}
               for s in library.values()]
    options += [{"label": f"Replay: the recorded {source.upper()} feed, against today's "
                          "roster", "value": REPLAY_PREFIX + source}
                for source in replayable_sources()]
    return html.Div([
        dcc.Location(id=ids.DRILLS_LOCATION, refresh=True),
        html.H1("Drills"),
        html.P("A drill plays a scenario's injects as EXERCISE hazards on its own clock. "
               "Drill hazards and drill outreach are kept apart: live lists, exports and the "
               "API never show them, and every page says EXERCISE while a drill runs.",
               className="muted"),
        html.Div(problem, className="notice-bar danger") if problem else None,
        html.Div([
            dcc.Dropdown(id=ids.DRILLS_SCENARIO, options=options, placeholder="scenario",
                         className="drill-scenario"),
            dcc.Dropdown(id=ids.DRILLS_SPEED, value=60, clearable=False,
                         options=[{"label": f"{s}x" + (" (real time)" if s == 1 else ""),
                                   "value": s} for s in SPEEDS], className="drill-speed"),
            dcc.Input(id=ids.DRILLS_NAME, placeholder="name of this drill (optional)",
                      maxLength=120, className="drill-name"),
            html.Button("Start drill", id=ids.DRILLS_START, className="button"),
            html.Span(id=ids.DRILLS_RESULT, className="admin-result"),
        ], className="admin-form"),
        html.H2("Drills"), _drills_table(now),
        html.H2("Scenario library"),
        dcc.Link("Write a new scenario", href="/drills/new", className="button"),
        _library_table(library),
    ], className="drills-page")


@auth.callback(
    "coordinator",
    Output(ids.DRILLS_LOCATION, "href"), Output(ids.DRILLS_RESULT, "children"),
    Input(ids.DRILLS_START, "n_clicks"),
    State(ids.DRILLS_SCENARIO, "value"), State(ids.DRILLS_SPEED, "value"),
    State(ids.DRILLS_NAME, "value"),
    prevent_initial_call=True,
)
def start(n_clicks: int | None, scenario_name: str | None, speed: float | None,
          name: str | None) -> tuple:
    """Start a drill of the chosen scenario (audited) and open its page."""
    if not n_clicks:
        raise dash.exceptions.PreventUpdate
    services = current()
    library = scenario_library.library(services.settings)
    scenario = library.get(scenario_name or "")
    kind = "scenario"
    if scenario is None and (scenario_name or "").startswith(REPLAY_PREFIX):
        try:
            scenario = recorded_replay(scenario_name[len(REPLAY_PREFIX):], services.states)
        except (ValueError, KeyError) as exc:
            return dash.no_update, f"Cannot replay it: {exc}"
        kind = "replay"
    if scenario is None:
        return dash.no_update, "Choose a scenario first."
    now = datetime.now(timezone.utc)
    drill = start_drill(
        current().engine, scenario_name=scenario.name,
        scenario_json=json.dumps(scenario_to_geojson(scenario), sort_keys=True),
        name=(name or "").strip() or f"{scenario.title} — {now:%Y-%m-%d %H:%M} UTC",
        speed=float(speed or 1), actor=auth.current_actor(), now=now, kind=kind)
    return f"/drill/{drill.drill_id}", f"Drill {drill.drill_id} started."
