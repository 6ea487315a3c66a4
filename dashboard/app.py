"""The Dash application factory."""

from __future__ import annotations

from pathlib import Path

import dash

from dashboard.services import Services, set_current
from settings import Settings

HERE = Path(__file__).resolve().parent


def create_app(settings: Settings, services: Services) -> dash.Dash:
    """Build the Dash app over ``services``; pages are registered from ``dashboard/pages``."""
    set_current(services)
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title="Mission Watch",
        serve_locally=True,
        suppress_callback_exceptions=True,
    )
    app.layout = dash.html.Div([
        dash.html.Header(
            [dash.html.H1("Mission Watch"),
             dash.html.Span("Foreign missions and hazards", className="subtitle")],
            className="topbar",
        ),
        dash.html.Main(dash.page_container),
    ])
    app.server.config["MISSIONWATCH_SETTINGS"] = settings
    return app
