"""Overview: the roster on a map (aggregated), with counts. No personal data on this page."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import figures, ids
from dashboard.services import current
from layers.schema import OFM_OFFICES

dash.register_page(__name__, path="/", title="Mission Watch - overview", name="Overview")


def _kpi(label: str, value: int) -> html.Div:
    return html.Div([html.Div(f"{value:,}", className="kpi-value"),
                     html.Div(label, className="kpi-label")], className="kpi")


def layout(**_query: str) -> html.Div:
    services = current()
    view = services.roster_view()
    stats = view.stats
    if view.version is None:
        return html.Div("The roster is empty: run 'python app.py roster generate' or "
                        "'python app.py roster import'.", className="notice")
    label = f"Roster: {view.source}"
    if view.synthetic:
        label += " — SYNTHETIC DEMO DATA: names, phones and e-mails are fake"
    rows = [
        html.Tr([html.Td(code), html.Td(f"{row['missions']:,}"), html.Td(f"{row['people']:,}"),
                 html.Td(f"{row['with_immunity']:,}")])
        for code, row in stats["by_jurisdiction"].items()
    ]
    offices = [
        html.Tr([html.Td(OFM_OFFICES[code]), html.Td(f"{row['missions']:,}"),
                 html.Td(f"{row['people']:,}")])
        for code, row in stats["by_ofm_office"].items()
    ]
    return html.Div([
        html.Div(label, id=ids.OVERVIEW_ROSTER_LABEL,
                 className="roster-label synthetic" if view.synthetic else "roster-label"),
        html.Div([
            _kpi("Missions", stats["missions"]),
            _kpi("Members and dependents", stats["people"]),
            _kpi("With immunity", stats["with_immunity"]),
            _kpi("Households", stats["households"]),
            _kpi("Jurisdictions", stats["jurisdictions"]),
        ], id=ids.OVERVIEW_KPIS, className="kpis"),
        dcc.Graph(
            id=ids.OVERVIEW_MAP,
            figure=figures.roster_map(view.missions, view.cell_counts, services.states_geojson),
            config={"displaylogo": False, "scrollZoom": True, "responsive": True},
            style={"height": "62vh"},
            className="overview-map",
        ),
        html.P("Residences are shown only as counts of people per H3 cell "
               f"(resolution {services.settings.display_h3_resolution}), never as single homes.",
               className="privacy-note"),
        html.Div([
            html.Div([html.H2("By jurisdiction"), html.Table(
                [html.Thead(html.Tr([html.Th("Jurisdiction"), html.Th("Missions"),
                                     html.Th("People"), html.Th("With immunity")])),
                 html.Tbody(rows)], id=ids.OVERVIEW_JURISDICTIONS, className="counts")]),
            html.Div([html.H2("By OFM office"), html.Table(
                [html.Thead(html.Tr([html.Th("Office"), html.Th("Missions"),
                                     html.Th("People")])),
                 html.Tbody(offices)], className="counts")]),
        ], className="tables"),
    ])
