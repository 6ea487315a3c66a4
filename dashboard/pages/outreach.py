"""Outreach board: who must be contacted for an incident (or several), and who has been.

``/outreach/<board_id>``: every affected mission (its duty contact) and household (its head)
with its latest status, who recorded it and when; views "not yet reached", "needs
assistance", "new"; grouped by sending country (with who liaises), OFM office or mission;
progress and time since the incident began. Updates are append-only events; an update made
on a stale view is refused with what the other coordinator recorded, never written over it.
Every open screen polls the board's version every few seconds and redraws when it changed.
Personal data: coordinators and admins only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, State, dash_table, dcc, html

from dashboard import auth, components, downloads, ids
from dashboard.services import BoardView, board_view, current
from layers.outreach import (
    GROUPINGS,
    STATUS_LABELS,
    STATUSES,
    VIEWS,
    group_labels,
    views,
)
from layers.schema import ROLES
from store import StoreFull
from store.outreach import (
    BoardNotFound,
    OutreachConflict,
    close_board,
    history,
    record_status,
)

dash.register_page(__name__, path_template="/outreach/<board_id>", name="Outreach board",
                   title="Mission Watch - outreach", min_role="coordinator", nav=False)

POLL_MS = 3_000
PAGE_SIZE = 50
VIEW_LABELS = {"all": "Everyone", "not_reached": "Not yet reached",
               "needs_assistance": "Needs assistance", "new": "New since the board began"}
GROUP_LABELS = {"country": "Sending country", "office": "OFM office", "mission": "Mission"}
COLUMNS = (
    ("group", "Group"), ("liaison", "Country liaison"), ("order", "#"), ("kind", "Kind"),
    ("mission_name", "Mission"),
    ("contact", "Contact"), ("role", "Role"), ("immunity", "Immunity"), ("phone", "Phone"),
    ("language", "Lang."), ("people", "People"), ("status", "Status"), ("note", "Note"),
    ("updated", "Updated"), ("flag", ""),
)


def _elapsed(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    return (f"{days} d " if days else "") + f"{hours} h {minutes:02d} min"


def _progress_tiles(data: BoardView, now: datetime) -> list:
    missions, households = data.progress["mission"], data.progress["household"]
    return [
        components.kpi(f"Missions reached (of {missions['total']:,})",
                       f"{missions['reached']:,} / {missions['total']:,}", "",
                       ids.OUTREACH_MISSIONS_REACHED),
        components.kpi("Households reached",
                       f"{households['reached']:,} / {households['total']:,}"),
        components.kpi("Need assistance",
                       missions["needs_assistance"] + households["needs_assistance"], "alert"),
        components.kpi("Not yet reached",
                       missions["total"] + households["total"] - missions["reached"]
                       - households["reached"], "alert"),
        components.kpi("New since the board began", missions["new"] + households["new"]),
        _began(data, now),
    ]


def _began(data: BoardView, now: datetime) -> html.Div:
    """Time since the incident began; for recorded feed data, the date (an age would mislead)."""
    recorded = "recorded_at" in data.hazards and data.hazards["recorded_at"].notna().any()
    if recorded:
        return components.kpi("Incident began (recorded feed data)",
                              f"{data.began_at:%Y-%m-%d}")
    return components.kpi("Since the incident began", _elapsed(data.began_at, now))


def _notices(data: BoardView) -> list:
    out = []
    if data.board.exercise:
        out.append(html.Div("EXERCISE — drill board, not a real event",
                            className="notice-bar danger"))
    if data.missing_hazards:
        out.append(html.Div(
            f"{len(data.missing_hazards)} of the board's hazards are no longer in the feeds "
            "(ended or replaced): the people they affected stay on the board with their "
            "status.", className="notice-bar"))
    if data.board.closed_at is not None:
        out.append(html.Div(f"This board was closed at {components.when(data.board.closed_at)}"
                            ": read only.", className="notice-bar"))
    return out


def table_rows(data: BoardView, *, view: str = "all", group: str = "office", search: str = "",
               ) -> pd.DataFrame:
    """The board's rows for one view, grouped (group label, then calling order), searched."""
    rows = views(data.rows, view if view in VIEWS else "all")
    rows = rows.assign(
        group=group_labels(rows, group if group in GROUPINGS else "office").to_numpy(),
        liaison=rows["country_name"].map(data.liaisons).fillna("").to_numpy())
    words = [w for w in (search or "").lower().split() if w]
    if words:
        text = (rows["contact"].astype(str) + " " + rows["mission_name"].astype(str) + " "
                + rows["phone"].astype(str) + " " + rows["country_name"].astype(str) + " "
                + rows["target_id"].astype(str) + " " + rows["note"].astype(str)).str.lower()
        keep = np.ones(len(rows), dtype=bool)
        for word in words:
            keep &= text.str.contains(word, regex=False).to_numpy()
        rows = rows[keep]
    return rows.sort_values(["group", "order", "target_kind", "target_id"], kind="stable")


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in rows.itertuples(index=False):
        updated = ""
        if row.updated_by:
            updated = f"{row.updated_by}, {components.when(row.updated_at)}"
        out.append({
            "id": f"{row.target_kind}:{row.target_id}", "group": row.group,
            "liaison": row.liaison,
            "role": ROLES.get(row.role, row.role),
            "order": "" if not np.isfinite(row.order) else int(row.order),
            "kind": "Mission" if row.target_kind == "mission" else "Household",
            "mission_name": row.mission_name, "contact": row.contact,
            "immunity": row.immunity, "phone": row.phone, "language": row.language,
            "people": int(row.people) if row.target_kind == "household" else "",
            "status": STATUS_LABELS.get(row.status, row.status), "note": row.note,
            "updated": updated,
            "flag": "NEW" if row.new else ("no longer affected" if not np.isfinite(row.order)
                                           else ""),
            "event_id": int(row.event_id), "status_code": row.status,
        })
    return out


def layout(board_id: str | None = None, **_query: str) -> html.Div:
    back = dcc.Link("← Overview", href="/", className="back")
    try:
        data = board_view(current(), int(board_id or ""), datetime.now(timezone.utc))
    except (ValueError, BoardNotFound):
        return html.Div([back, html.Div(f"No outreach board {board_id!r}.",
                                        id=ids.OUTREACH_ERROR, className="notice")])
    board = data.board
    incident_links = [dcc.Link(row.event, href=f"/incident/{row.key}", className="hazard-link")
                      for row in data.hazards.itertuples()] if len(data.hazards) else []
    return html.Div([
        dcc.Store(id=ids.OUTREACH_BOARD, data=board.board_id),
        dcc.Store(id=ids.OUTREACH_VERSION, data=repr(data.version)),
        dcc.Interval(id=ids.OUTREACH_POLL, interval=POLL_MS),
        back,
        html.H1(f"Outreach: {board.name}", id=ids.OUTREACH_TITLE),
        html.P([html.Span(f"Board {board.board_id}, opened by {board.created_by} at "
                          f"{components.when(board.created_at)}. Hazards: ",
                          className="muted"), *_joined(incident_links)]),
        html.Div(_notices(data), id=ids.OUTREACH_NOTICES),
        _exports(board.board_id),
        html.Div(_progress_tiles(data, datetime.now(timezone.utc)), id=ids.OUTREACH_PROGRESS,
                 className="kpis"),
        html.Div([
            html.Div([html.Label("Show", htmlFor=ids.OUTREACH_VIEW),
                      dcc.RadioItems(id=ids.OUTREACH_VIEW, value="not_reached", inline=True,
                                     options=[{"label": f" {VIEW_LABELS[v]}", "value": v}
                                              for v in VIEWS])], className="filter wide"),
            html.Div([html.Label("Group by", htmlFor=ids.OUTREACH_GROUP),
                      dcc.Dropdown(id=ids.OUTREACH_GROUP, value="country", clearable=False,
                                   options=[{"label": GROUP_LABELS[g], "value": g}
                                            for g in GROUPINGS])], className="filter"),
            html.Div([html.Label("Search", htmlFor=ids.OUTREACH_SEARCH),
                      dcc.Input(id=ids.OUTREACH_SEARCH, type="search", debounce=True,
                                placeholder="name, mission, phone, note…")],
                     className="filter"),
        ], className="filters"),
        html.Div([
            html.Div([
                html.Span(id=ids.OUTREACH_COUNT, className="muted"),
                dash_table.DataTable(
                    id=ids.OUTREACH_TABLE,
                    columns=[{"name": h, "id": c} for c, h in COLUMNS],
                    data=[], page_action="custom", page_current=0, page_size=PAGE_SIZE,
                    row_selectable="single", selected_row_ids=[],
                    style_table=components.TABLE_STYLE,
                    style_cell={**components.CELL_STYLE, "maxWidth": "18rem"},
                    style_header=components.HEADER_STYLE,
                    style_cell_conditional=[
                        {"if": {"column_id": "phone"}, "minWidth": "9rem"},
                        {"if": {"column_id": "liaison"}, "minWidth": "12rem"},
                        {"if": {"column_id": "note"}, "minWidth": "10rem"},
                    ],
                    style_data_conditional=[
                        {"if": {"filter_query": '{status} = "Reached: needs assistance"'},
                         "backgroundColor": "#ffebee"},
                        {"if": {"filter_query": '{flag} = "NEW"'},
                         "backgroundColor": "#fff8e1"},
                        {"if": {"filter_query": '{status} = "Reached: safe"'},
                         "backgroundColor": "#e8f5e9"},
                    ],
                ),
            ], className="board-table"),
            html.Div([
                html.H2("Record an outcome"),
                html.Div("Tick a row in the table.", id=ids.OUTREACH_SELECTED,
                         className="muted"),
                dcc.RadioItems(id=ids.OUTREACH_STATUS, value=None,
                               options=[{"label": f" {STATUS_LABELS[s]}", "value": s}
                                        for s in STATUSES if s != "not_contacted"],
                               className="status-choices"),
                dcc.Textarea(id=ids.OUTREACH_NOTE, placeholder="Note (who answered, what "
                             "they need, a callback number…)", maxLength=2000,
                             className="note"),
                html.Button("Save", id=ids.OUTREACH_SAVE, className="save",
                            disabled=board.closed_at is not None),
                html.Div(id=ids.OUTREACH_RESULT, className="admin-result", role="status"),
                html.H3("History"),
                html.Div(id=ids.OUTREACH_HISTORY),
                html.Hr(),
                dcc.ConfirmDialogProvider(
                    html.Button("Close this board", id=ids.OUTREACH_CLOSE, className="button",
                                disabled=board.closed_at is not None),
                    id=ids.OUTREACH_CLOSE_CONFIRM,
                    message="Close this board? Its history stays and can be exported; no more "
                            "outcomes can be recorded on it."),
                html.Div(id=ids.OUTREACH_CLOSED, className="admin-result", role="status"),
            ], className="board-side"),
        ], className="board-main"),
    ], className="outreach-page")


def _exports(board_id: int) -> html.Div:
    """Downloads of the whole board (every export is audited)."""
    def link(label: str, fmt: str, link_id: str | None = None, **options: str) -> html.A:
        extra = {"id": link_id} if link_id else {}
        download = {} if fmt == "html" else {"download": ""}
        return html.A(label, href=downloads.board_export_url(board_id, fmt, **options),
                      className="button", target="_blank" if fmt == "html" else None,
                      rel="noopener", **extra, **download)

    return html.Div([
        html.Span("Export the board:", className="muted"),
        link("CSV", "csv", ids.OUTREACH_EXPORT_CSV),
        link("XLSX by OFM office", "xlsx", split="office"),
        link("XLSX by country", "xlsx", split="country"),
        link("Printable call sheet", "html", ids.OUTREACH_EXPORT_SHEET, group="office"),
        link("Duty contacts (vCard)", "vcf"),
        html.Span("Every export is recorded in the audit log.", className="muted"),
    ], id=ids.OUTREACH_EXPORTS, className="exports")


def _joined(links: list) -> list:
    out: list = []
    for i, link in enumerate(links):
        out += ([", "] if i else []) + [link]
    return out or ["none left in the feeds"]


@auth.callback(
    "coordinator",
    Output(ids.OUTREACH_TABLE, "data"), Output(ids.OUTREACH_TABLE, "page_count"),
    Output(ids.OUTREACH_COUNT, "children"), Output(ids.OUTREACH_PROGRESS, "children"),
    Output(ids.OUTREACH_NOTICES, "children"), Output(ids.OUTREACH_VERSION, "data"),
    Input(auth.passive_input(ids.OUTREACH_POLL), "n_intervals"),
    Input(ids.OUTREACH_VIEW, "value"), Input(ids.OUTREACH_GROUP, "value"),
    Input(ids.OUTREACH_SEARCH, "value"), Input(ids.OUTREACH_TABLE, "page_current"),
    Input(ids.OUTREACH_RESULT, "children"),
    State(ids.OUTREACH_BOARD, "data"), State(ids.OUTREACH_VERSION, "data"),
)
def refresh(_tick: int | None, view: str | None, group: str | None,  # noqa: PLR0917
            search: str | None, page: int | None, _saved: Any, board_id: int | None,
            seen: str | None) -> tuple:
    """Redraw when the board changed or the view did; a quiet tick sends nothing."""
    now = datetime.now(timezone.utc)
    try:
        data = board_view(current(), int(board_id or 0), now)
    except BoardNotFound as exc:
        return [], 1, str(exc), [], [], seen
    triggered = {t["prop_id"].split(".")[0] for t in dash.callback_context.triggered}
    if triggered == {ids.OUTREACH_POLL} and repr(data.version) == seen:
        return (dash.no_update,) * 4 + (dash.no_update, seen)
    rows = table_rows(data, view=view or "all", group=group or "country", search=search or "")
    chunk, pages, _ = components.page_of(rows, page, PAGE_SIZE)
    label = VIEW_LABELS.get(view or "all", "")
    count = f"{len(rows):,} target(s): {label.lower()}; updated {components.when(now)}"
    return (_records(chunk), pages, count, _progress_tiles(data, now), _notices(data),
            repr(data.version))


@auth.callback(
    "coordinator",
    Output(ids.OUTREACH_SELECTED, "children"), Output(ids.OUTREACH_HISTORY, "children"),
    Input(ids.OUTREACH_TABLE, "selected_row_ids"), Input(ids.OUTREACH_RESULT, "children"),
    State(ids.OUTREACH_BOARD, "data"),
)
def show_selected(selected: list | None, _saved: Any, board_id: int | None) -> tuple:
    if not selected:
        return "Tick a row in the table.", []
    kind, _, target_id = str(selected[0]).partition(":")
    try:
        data = board_view(current(), int(board_id or 0), datetime.now(timezone.utc))
    except BoardNotFound as exc:
        return str(exc), []
    match = data.rows[(data.rows["target_kind"] == kind) & (data.rows["target_id"] == target_id)]
    if match.empty:
        return "That row is no longer on the board.", []
    row = match.iloc[0]
    events = history(current().engine, int(board_id or 0), (kind, target_id))
    items = [html.Li(f"{components.when(e.at)} — {STATUS_LABELS.get(e.status, e.status)} by "
                     f"{e.actor}" + (f": {e.note}" if e.note else ""))
             for e in events.itertuples()][::-1]
    title = (f"{row['mission_name']} (duty contact)" if kind == "mission"
             else f"{row['contact']}, household {target_id} of {row['mission_name']}")
    return ([html.B(title), html.Div(f"{row['phone']} · {row['email']} · language "
                                     f"{row['language']}"),
             html.Div(f"Now: {STATUS_LABELS.get(row['status'], row['status'])}",
                      className="muted")],
            html.Ul(items) if items else html.P("No update yet.", className="muted"))


@auth.callback(
    "coordinator",
    Output(ids.OUTREACH_RESULT, "children"),
    Input(ids.OUTREACH_SAVE, "n_clicks"),
    State(ids.OUTREACH_TABLE, "selected_row_ids"), State(ids.OUTREACH_TABLE, "data"),
    State(ids.OUTREACH_STATUS, "value"), State(ids.OUTREACH_NOTE, "value"),
    State(ids.OUTREACH_BOARD, "data"),
    prevent_initial_call=True,
)
def save(_clicks: int | None, selected: list | None,
         page_rows: list | None, status: str | None, note: str | None,
         board_id: int | None) -> str:
    """Append the outcome, naming the event this screen showed: a newer one is a conflict."""
    if not selected:
        return "Tick the row you called first."
    if status not in STATUSES:
        return "Choose what happened."
    shown = next((r for r in page_rows or [] if r.get("id") == selected[0]), None)
    if shown is None:
        return "That row is no longer shown; tick it again."
    kind, _, target_id = str(selected[0]).partition(":")
    try:
        event, _ = record_status(
            current().engine, int(board_id or 0), kind, target_id, status, note=note or "",
            actor=auth.current_actor(), now=datetime.now(timezone.utc),
            expected_event_id=int(shown.get("event_id") or 0))
    except (OutreachConflict, ValueError, BoardNotFound, StoreFull) as exc:
        return f"Not saved: {exc}"
    return (f"Saved at {components.when(event.at)}: {STATUS_LABELS[event.status]} for "
            f"{shown.get('contact') or target_id}.")



@auth.callback(
    "coordinator",
    Output(ids.OUTREACH_CLOSED, "children"),
    Input(ids.OUTREACH_CLOSE_CONFIRM, "submit_n_clicks"), State(ids.OUTREACH_BOARD, "data"),
    prevent_initial_call=True,
)
def close(confirmed: int | None, board_id: int | None) -> str:
    """Close the board once confirmed (audited); its history stays, read only."""
    if not confirmed:
        raise dash.exceptions.PreventUpdate
    try:
        board = close_board(current().engine, int(board_id or 0), actor=auth.current_actor(),
                            now=datetime.now(timezone.utc))
    except BoardNotFound as exc:
        return str(exc)
    return (f"Closed at {components.when(board.closed_at)}. Reload to see it read only; a new "
            "board can be opened for the same incidents.")
