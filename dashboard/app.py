"""The Dash application factory."""

from __future__ import annotations

import logging
from pathlib import Path

import dash
import flask
import plotly.io.json
import sqlalchemy as sa
from dash import Input, Output, dcc, html
from flask_compress import Compress
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard import api, auth, downloads, drill_report, drills, health, ids, wall
from dashboard.services import Services, set_current
from settings import Settings
from store.users import role_rank

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
COMPRESSED_TYPES = ("application/json", "application/javascript", "text/javascript",
                    "text/css", "text/csv", "image/svg+xml")


def _nav(role: str | None) -> list:
    """Links to the pages this role may open (a convenience: the server enforces roles)."""
    links = []
    for page in dash.page_registry.values():
        if page.get("nav") is False:
            continue
        if role is not None and role_rank(role) >= role_rank(
                page.get("min_role", auth.DEFAULT_ROLE)):
            links.append(dcc.Link(page["name"], href=page["relative_path"], className="nav"))
    return links


def shell() -> html.Div:
    """The frame around every page: title, the pages this user may open, who is signed in."""
    principal = auth.current_principal()
    account: list = []
    if principal is not None:
        kind = "display" if principal.kind == "token" else principal.name
        account = [html.Span(f"{kind} ({principal.role})", id=ids.AUTH_WHO, className="who"),
                   html.Button("Sign out", id=ids.AUTH_SIGN_OUT, className="sign-out")]
    return html.Div([
        dcc.Location(id=ids.AUTH_LOCATION, refresh=True),
        _exercise_banner(principal is not None),
        html.Header(
            [html.H1("Mission Watch"),
             html.Span("Foreign missions and hazards", className="subtitle"),
             html.Nav(_nav(principal.role if principal else None), className="pages"),
             html.Div(account, className="account")],
            className="topbar",
        ),
        html.Main(dash.page_container),
    ])


def _exercise_banner(signed_in: bool) -> html.Div:
    """EXERCISE across the top of every page while a drill runs (one small query)."""
    names = drill_names() if signed_in else ()
    if not names:
        return html.Div(id=ids.EXERCISE_BANNER, hidden=True)
    return html.Div(f"EXERCISE — drill running: {'; '.join(names[:3])}. Drill hazards and "
                    "drill outreach are kept apart from live data.",
                    id=ids.EXERCISE_BANNER, className="exercise-banner")


def drill_names() -> tuple[str, ...]:
    from dashboard.services import current

    return drills.exercise_names(current())


def sign_out(n_clicks: int | None) -> str:
    """Sign out (the session cookie is cleared in this response), then go to the sign-in page."""
    if not n_clicks:
        raise dash.exceptions.PreventUpdate
    auth.sign_out()
    return "/login"


def create_app(settings: Settings, services: Services, *,
               metrics_dir: Path | None = None) -> dash.Dash:
    """Build the Dash app over ``services``; pages are registered from ``dashboard/pages``.

    Every route, page and callback is behind :mod:`dashboard.auth`: nothing but the sign-in
    page and static code is served without signing in.
    """
    set_current(services)
    server = flask.Flask(__name__, static_folder=None)
    if settings.trusted_proxies:  # believe only the proxies we were told stand in front
        hops = settings.trusted_proxies
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore[method-assign]
                                   x_host=hops)
    app = dash.Dash(
        __name__,
        server=server,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title="Mission Watch",
        serve_locally=True,
        suppress_callback_exceptions=True,
    )
    app.layout = shell
    auth.callback(auth.ROLES[0], Output(ids.AUTH_LOCATION, "href"),
                  Input(ids.AUTH_SIGN_OUT, "n_clicks"), prevent_initial_call=True,
                  app=app)(sign_out)
    app.server.config["MISSIONWATCH_SETTINGS"] = settings
    # Compress code, styles, callback answers (map GeoJSON shrinks about five-fold) and CSV
    # exports. Not HTML: the sign-in page carries a form token, and compressing secrets next to
    # reflected input is what BREACH-style attacks need.
    server.config.update(COMPRESS_MIMETYPES=list(COMPRESSED_TYPES), COMPRESS_ALGORITHM="gzip",
                         COMPRESS_MIN_SIZE=1024)
    Compress(server)
    # Plotly's "auto" JSON engine picks orjson when installed, but first walks every nested
    # list in Python to clean it: three times slower than the standard library for our maps.
    plotly.io.json.config.default_engine = "json"
    auth.init_app(app, settings, services.engine)
    downloads.init_app(app, services.engine, settings.data_path / "exports")
    api.init_app(app, services)
    wall.init_app(app, services)
    drills.init_app(app, services)
    health.init_app(app, services, metrics_dir)
    drill_report.init_app(app, services)
    for error in STORE_DOWN_ERRORS:
        server.register_error_handler(error, _store_unavailable)
    return app


# The store not answering (a database restart, a network cut, every pooled connection busy):
# a clear "try again" 503 with Retry-After, never a 500 "internal error". Clients recover by
# themselves: the pool checks each connection before use and opens new ones after a restart.
STORE_DOWN_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError,
                     sa.exc.PendingRollbackError)
STORE_DOWN_MESSAGE = ("The store is not answering (a database restart?). Nothing was lost; "
                      "try again in a few seconds.")


def _store_unavailable(exc: Exception) -> flask.Response:
    logger.warning("store unavailable during %s %s: %s", flask.request.method,
                   flask.request.path, type(exc).__name__)
    if flask.request.path.startswith(api.PREFIX + "/"):
        response = api.error_response(503, "store_unavailable", STORE_DOWN_MESSAGE)
    else:
        response = flask.Response(STORE_DOWN_MESSAGE + "\n", status=503, mimetype="text/plain")
    response.headers["Retry-After"] = "5"
    response.headers["Cache-Control"] = "no-store"
    return response
