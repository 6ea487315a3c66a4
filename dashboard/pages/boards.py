"""Outreach boards: the open ones with their progress, newest first (coordinators)."""

from __future__ import annotations

from datetime import datetime, timezone

import dash
from dash import dcc, html

from dashboard import components, ids
from dashboard.services import board_view, current
from store.outreach import list_boards

dash.register_page(__name__, path="/outreach", title="Mission Watch - outreach",
                   name="Outreach", min_role="coordinator")


def layout(**_query: str) -> html.Div:
    services = current()
    now = datetime.now(timezone.utc)
    rows = []
    for board in list_boards(services.engine):
        data = board_view(services, board.board_id, now)
        missions, households = data.progress["mission"], data.progress["household"]
        rows.append(html.Tr([
            html.Td(dcc.Link(board.name, href=f"/outreach/{board.board_id}")),
            html.Td(components.when(board.created_at)), html.Td(board.created_by),
            html.Td(f"{missions['reached']:,} / {missions['total']:,}"),
            html.Td(f"{households['reached']:,} / {households['total']:,}"),
            html.Td(f"{missions['needs_assistance'] + households['needs_assistance']:,}"),
        ]))
    if not rows:
        body: list = [html.P("No outreach board is open. Open one from an incident page "
                             "(\"Start outreach\").", className="notice")]
    else:
        body = [html.Table([
            html.Thead(html.Tr([html.Th(h) for h in (
                "Board", "Opened", "By", "Missions reached", "Households reached",
                "Need assistance")])),
            html.Tbody(rows)], className="counts admin", id=ids.BOARDS_LIST)]
    return html.Div([html.H1("Outreach boards"), *body], className="outreach-page")
