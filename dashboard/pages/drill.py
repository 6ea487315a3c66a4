"""One drill (``/drill/<id>``, coordinators): its clock and controls, the injects fired and to
come, who the drill's hazards in force affect, and its outreach (exercise boards).

Everything on this page is EXERCISE: the drill's hazards are worked out from its scenario and
clock (dashboard.drills), never stored with the live feeds.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dash
from dash import Input, Output, State, ctx, dcc, html

from dashboard import auth, components, ids
from dashboard.drill_report import report_url
from dashboard.drills import SPEEDS, clock_text, drill_map_url, drill_view
from dashboard.services import current
from store.drills import DrillNotFound, DrillStateError, pause_drill, resume_drill, set_speed
from store.drills import stop_drill as store_stop_drill
from store.outreach import list_boards, open_board

dash.register_page(__name__, path_template="/drill/<drill_id>", name="Drill",
                   title="Mission Watch - drill", min_role="coordinator", nav=False)

REFRESH_MS = 2000


def _drill_id(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _status(view) -> list:
    drill = view.drill
    upcoming = view.next_inject
    if upcoming is None:
        coming = "every inject has fired"
    else:
        item, at = upcoming
        when = components.when(at) if at is not None else "when the drill resumes"
        coming = f"next: {item.event} at {clock_text(item.at_minutes)} ({when})"
    return [
        html.Div(f"EXERCISE — {drill.name}", className="drill-banner"),
        html.Div([
            html.Span(clock_text(view.elapsed), className="drill-clock", id=ids.DRILL_CLOCK),
            html.Span(f" {drill.state.upper()} · speed {drill.speed:g}x · scenario "
                      f"{view.scenario.title} · {len(view.fired)} of "
                      f"{len(view.scenario.injects)} injects fired · {coming}",
                      className="muted"),
        ]),
        html.Div([
            components.kpi("Drill hazards in force", len(view.incidents)),
            components.kpi("Missions affected", view.totals["missions"], "alert"),
            components.kpi("Members and dependents affected", view.totals["people"], "alert"),
            components.kpi("With immunity", view.totals["with_immunity"]),
            components.kpi("Households", view.totals["households"]),
        ], className="kpis"),
    ]


def _injects(view) -> html.Table:
    fired = {i.inject_id for i in view.fired}
    in_force = set(view.incidents["inject_id"])
    rows = []
    for item in view.scenario.injects:
        state, css = (("in force", "in-force") if item.inject_id in in_force
                      else ("fired, ended", "ended") if item.inject_id in fired
                      else ("to come", "to-come"))
        rows.append(html.Tr([
            html.Td(clock_text(item.at_minutes)), html.Td(item.event),
            html.Td(components.severity_badge(item.severity)), html.Td(item.area_desc[:80]),
            html.Td(state, className=f"drill-state-{css}"),
        ]))
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in (
        "At", "Inject", "Severity", "Area", "State")])), html.Tbody(rows)],
        className="counts admin", id=ids.DRILL_INJECTS)


def _incidents(view) -> list:
    if view.incidents.empty:
        return [html.P("No drill hazard is in force yet.", className="muted")]
    return [html.Div([
        html.Div([components.severity_badge(r.severity), " ", html.B(r.event),
                  html.Span(" EXERCISE", className="muted")], className="incident-head"),
        html.Div(r.area_desc[:140], className="incident-area muted"),
        html.Div([html.Span(f"{r.missions:,} missions", className="count"),
                  html.Span(f"{r.people:,} people", className="count"),
                  html.Span(f"{r.with_immunity:,} with immunity", className="count")],
                 className="incident-counts"),
    ], className="incident-row") for r in view.incidents.itertuples(index=False)]


def _boards(view) -> list:
    prefix = f"drill:{view.drill.drill_id}:"
    boards = [b for b in list_boards(current().engine, exercise=True, include_closed=True)
              if b.hazard_ids and all(h.startswith(prefix) for h in b.hazard_ids)]
    if not boards:
        return [html.P("No drill outreach yet.", className="muted")]
    return [html.Ul([html.Li(dcc.Link(f"{b.name} (EXERCISE board {b.board_id})",
                                      href=f"/outreach/{b.board_id}")) for b in boards])]


def compute(drill_id: int) -> dict:
    view = drill_view(current(), drill_id, datetime.now(timezone.utc))
    return {"status": _status(view), "injects": _injects(view),
            "incidents": _incidents(view), "boards": _boards(view),
            "map": drill_map_url(view)}


def layout(drill_id: str | None = None, **_query: str) -> html.Div:
    number = _drill_id(drill_id)
    try:
        result = compute(number) if number is not None else None
    except DrillNotFound:
        result = None
    if result is None:
        return html.Div([html.H1("No such drill"),
                         dcc.Link("← Drills", href="/drills")], className="notice")
    return html.Div([
        dcc.Store(id=ids.DRILL_ID, data=number),
        dcc.Location(id=ids.DRILL_LOCATION, refresh=True),
        dcc.Interval(id=ids.DRILL_REFRESH, interval=REFRESH_MS),
        dcc.Link("← Drills", href="/drills", className="back"),
        html.Div(result["status"], id=ids.DRILL_STATUS),
        html.Div([
            html.Button("Pause", id=ids.DRILL_PAUSE, className="button"),
            html.Button("Resume", id=ids.DRILL_RESUME, className="button"),
            dcc.Dropdown(id=ids.DRILL_SPEED, options=[{"label": f"{s}x", "value": s}
                                                      for s in SPEEDS],
                         placeholder="speed", className="drill-speed"),
            html.Button("Stop the drill", id=ids.DRILL_STOP, className="button danger"),
            html.Button("Start drill outreach for the hazards in force",
                        id=ids.DRILL_OPEN_BOARD, className="button"),
            html.Span(id=ids.DRILL_RESULT, className="admin-result"),
        ], className="admin-form"),
        dcc.ConfirmDialog(id=ids.DRILL_STOP_CONFIRM,
                          message="Stop this drill? Its clock stops for good; its records "
                                  "and report stay."),
        html.Div([
            html.Div([html.Img(src=result["map"], id=ids.DRILL_MAP, className="drill-map",
                               alt="the drill's hazards in force and who they affect"),
                      html.H2("Injects"), html.Div(result["injects"], id=ids.DRILL_TIMELINE)],
                     className="map-column"),
            html.Div([html.H2("Drill hazards in force"),
                      html.Div(result["incidents"], id=ids.DRILL_INCIDENTS),
                      html.H2("Drill outreach"),
                      html.Div(["After-action report: ",
                                html.A("HTML", href=report_url(number, "html")), " · ",
                                html.A("CSV", href=report_url(number, "csv"))],
                               className="drill-report"),
                      html.Div(result["boards"], id=ids.DRILL_BOARDS)],
                     className="incident-column"),
        ], className="overview-main"),
    ], className="drill-page")


@auth.callback(
    "coordinator",
    Output(ids.DRILL_STATUS, "children"), Output(ids.DRILL_TIMELINE, "children"),
    Output(ids.DRILL_INCIDENTS, "children"), Output(ids.DRILL_BOARDS, "children"),
    Output(ids.DRILL_MAP, "src"),
    Input(auth.passive_input(ids.DRILL_REFRESH), "n_intervals"), Input(ids.DRILL_RESULT,
                                                                       "children"),
    State(ids.DRILL_ID, "data"),
    prevent_initial_call=True,
)
def refresh(_n: int | None, _result: object, drill_id: int | None) -> tuple:
    if drill_id is None:
        raise dash.exceptions.PreventUpdate
    result = compute(int(drill_id))
    return (result["status"], result["injects"], result["incidents"], result["boards"],
            result["map"])


@auth.callback(
    "coordinator",
    Output(ids.DRILL_STOP_CONFIRM, "displayed"),
    Input(ids.DRILL_STOP, "n_clicks"),
    prevent_initial_call=True,
)
def confirm_stop(n_clicks: int | None) -> bool:
    return bool(n_clicks)


@auth.callback(
    "coordinator",
    Output(ids.DRILL_RESULT, "children"), Output(ids.DRILL_LOCATION, "href"),
    Input(ids.DRILL_PAUSE, "n_clicks"), Input(ids.DRILL_RESUME, "n_clicks"),
    Input(ids.DRILL_SPEED, "value"), Input(ids.DRILL_STOP_CONFIRM, "submit_n_clicks"),
    Input(ids.DRILL_OPEN_BOARD, "n_clicks"),
    State(ids.DRILL_ID, "data"),
    prevent_initial_call=True,
)
def control(_pause: int | None, _resume: int | None, speed: float | None,
            _stop: int | None, _board: int | None, drill_id: int | None) -> tuple:
    """Pause, resume, change speed, stop (after confirming), or open the drill's outreach
    board; every change is audited by the store."""
    trigger = ctx.triggered_id
    if drill_id is None or trigger is None:
        raise dash.exceptions.PreventUpdate
    services, now, actor = current(), datetime.now(timezone.utc), auth.current_actor()
    try:
        if trigger == ids.DRILL_PAUSE:
            pause_drill(services.engine, drill_id, actor=actor, now=now)
            return "Paused.", dash.no_update
        if trigger == ids.DRILL_RESUME:
            resume_drill(services.engine, drill_id, actor=actor, now=now)
            return "Resumed.", dash.no_update
        if trigger == ids.DRILL_SPEED:
            if not speed:
                raise dash.exceptions.PreventUpdate
            set_speed(services.engine, drill_id, float(speed), actor=actor, now=now)
            return f"Speed {float(speed):g}x.", dash.no_update
        if trigger == ids.DRILL_STOP_CONFIRM:
            store_stop_drill(services.engine, drill_id, actor=actor, now=now)
            return "Stopped.", dash.no_update
    except (DrillStateError, ValueError) as exc:   # a wrong state; a clock behind the drill's
        return str(exc), dash.no_update
    view = drill_view(services, drill_id, now)
    if view.incidents.empty:
        return "No drill hazard is in force yet: nothing to reach.", dash.no_update
    name = "EXERCISE: " + "; ".join(view.incidents["event"].head(4))
    board, _ = open_board(services.engine, list(view.incidents["hazard_id"]), name=name[:200],
                          actor=actor, now=now, exercise=True)
    return dash.no_update, f"/outreach/{board.board_id}"
