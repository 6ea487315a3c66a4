"""Access control for the Dash app: sign-in, sessions, roles on every route and callback.

Every request passes one gate (a Flask ``before_request`` hook) that decides from what the
request *is*, never from what the page shows:

- a **route** is public, needs a role, is a page, or is the Dash callback endpoint. Routes are
  declared in :func:`declare_route`; an undeclared route needs ``admin`` (default deny).
- a **page** declares ``min_role`` in ``dash.register_page(..., min_role="display")``; a page
  that declares none needs ``admin``. The HTML shell of a path and Dash's page-routing callback
  for that path both need the page's role.
- a **callback** declares its role with :func:`callback` (a wrapper of ``dash.callback``); an
  undeclared callback needs ``admin``. The callback run is the one Dash will run for the
  posted ``output`` key, and the posted inputs must be the ones it declares.

Who is asking: a password session (Flask-Login over Flask's signed cookie), a display session
made from a display token (``/?token=...``), or a request with ``Authorization: Bearer`` and a
display token or an API token (an API token acts as its user, with the user's role now; it is
never exchanged for a session). Users and tokens are re-read from the store on every request,
so disabling a user, changing a role or revoking a token takes effect at once. Nothing here
logs a password, a token or a name.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import dash
import flask
import limits
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from sqlalchemy.engine import Engine

from settings import Settings
from store import ratelimit
from store.db import record_audit
from store.users import (
    ROLES,
    active_token,
    authenticate,
    end_sessions,
    get_user,
    role_rank,
    token_for_secret,
)

logger = logging.getLogger(__name__)

PUBLIC = "public"          # anyone, signed in or not: static code and styles, the sign-in page
PAGE = "page"              # the role of the Dash page at the requested path
CALLBACK = "callback"      # the role of the Dash callback named in the posted body
API_PREFIX = "/api/"         # where API tokens are accepted (and nowhere else)
DEFAULT_ROLE = "admin"     # what an undeclared route, page or callback needs
EXTENSION = "missionwatch_auth"
ROLE_ATTRIBUTE = "__missionwatch_min_role__"
PAGES_CONTENT_ID = "_pages_content"   # Dash's page container; its callback renders pages
API_PREFIX = "/api/"                  # JSON routes: errors as {"error": {"code", "message"}}
_SESSION_KEYS = ("mw_auth_at", "mw_seen", "mw_csrf")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- declarations


def callback(min_role: str, *args: Any, app: dash.Dash | None = None,
             **kwargs: Any) -> Callable[[Callable], Callable]:
    """``dash.callback`` (or ``app.callback``) that also declares the least role allowed to
    run the callback; the gate refuses everyone below it."""
    if min_role not in ROLES:
        raise ValueError(f"min_role must be one of {', '.join(ROLES)}, got {min_role!r}")

    def decorate(func: Callable) -> Callable:
        setattr(func, ROLE_ATTRIBUTE, min_role)
        register = dash.callback if app is None else app.callback
        return register(*args, **kwargs)(func)

    return decorate


_PASSIVE_INPUTS: set[str] = set()


def passive_input(component_id: str) -> str:
    """Declare an input (e.g. a dcc.Interval) whose firing is not user activity: callbacks it
    alone triggers do not keep a session from timing out. Returns the id."""
    _PASSIVE_INPUTS.add(component_id)
    return component_id


def declare_route(server: flask.Flask, rule: str, min_role: str) -> None:
    """Declare who may request ``rule`` (a Flask rule string such as ``/api/v1/<path:p>``):
    ``PUBLIC``, ``PAGE``, ``CALLBACK`` or a role."""
    if min_role not in (*ROLES, PUBLIC, PAGE, CALLBACK):
        raise ValueError(f"min_role must be a role, PUBLIC, PAGE or CALLBACK, got {min_role!r}")
    _state(server).routes[rule] = min_role


def callback_role(func: Callable | None) -> str | None:
    """The role a callback function declared (following ``functools.wraps`` chains)."""
    seen = 0
    while func is not None and seen < 20:
        role = getattr(func, ROLE_ATTRIBUTE, None)
        if role is not None:
            return role
        func = getattr(func, "__wrapped__", None)
        seen += 1
    return None


def page_for_path(app: dash.Dash, path: str) -> dict[str, Any] | None:
    """The registered page Dash renders for ``path``, or None (Dash shows its 404)."""
    from dash._pages import _path_to_page  # Dash's own resolver, so we judge what it renders

    page, _ = _path_to_page(app.strip_relative_path(path))
    return page or None


def page_role(app: dash.Dash, path: str) -> str:
    """The least role that may see the page at ``path`` (an unknown path shows a 404: any)."""
    page = page_for_path(app, path)
    if page is None:
        return ROLES[0]
    return page.get("min_role", DEFAULT_ROLE)


# --------------------------------------------------------------------------- who is asking


@dataclasses.dataclass(frozen=True, eq=False)
class Principal(UserMixin):
    """A signed-in user, a display token (from a session or a bearer header), or a user acting
    through one of their API tokens (``kind`` "user", ``token_id`` set, always bearer)."""

    kind: str            # "user" or "token"
    ident: int
    name: str
    role: str
    epoch: int = 0
    bearer: bool = False
    token_id: int | None = None

    def get_id(self) -> str:
        return f"u:{self.ident}:{self.epoch}" if self.kind == "user" else f"t:{self.ident}"

    @property
    def actor(self) -> str:
        if self.kind == "user":
            via = f" (token {self.token_id})" if self.token_id is not None else ""
            return f"user:{self.name}{via}"
        return f"token:{self.ident}"


@dataclasses.dataclass
class AuthState:
    """Per-app access-control state, kept in ``server.extensions``."""

    app: dash.Dash
    settings: Settings
    engine: Engine
    limiter: Limiter
    attempt_limits: list[Any]
    routes: dict[str, str] = dataclasses.field(default_factory=dict)
    clock: Clock = _utcnow
    _throttle_audited: dict[str, float] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def route_policy(self, rule: str) -> str:
        return self.routes.get(rule, DEFAULT_ROLE)


def _state(server: flask.Flask | None = None) -> AuthState:
    return (server or flask.current_app).extensions[EXTENSION]


def _remote() -> str:
    return get_remote_address() or "unknown"


def _audit(actor: str, action: str, detail: dict[str, Any]) -> None:
    state = _state()
    with state.engine.begin() as connection:
        record_audit(connection, actor, action, detail, state.clock())


def _load_session_principal(user_id: str) -> Principal | None:
    """Flask-Login's user loader: re-read the user or token on every request."""
    state = _state()
    kind, _, rest = user_id.partition(":")
    try:
        if kind == "u":
            ident, _, epoch = rest.partition(":")
            user = get_user(state.engine, int(ident))
            if user is None or user.disabled or user.session_epoch != int(epoch):
                return None
            return Principal("user", user.user_id, user.username, user.role, user.session_epoch)
        if kind == "t":
            token = active_token(state.engine, int(rest), now=state.clock())
            if token is None or token.kind != "display":
                return None
            return Principal("token", token.token_id, token.name, token.role)
    except ValueError:
        return None
    return None


def _attempts_exceeded(kind: str) -> bool:
    state = _state()
    return not all(state.limiter.limiter.test(item, kind, _remote())
                   for item in state.attempt_limits)


def _count_failed_attempt(kind: str) -> None:
    state = _state()
    for item in state.attempt_limits:
        state.limiter.limiter.hit(item, kind, _remote())


def _load_bearer_principal(request: flask.Request) -> Principal | None:
    """Flask-Login's request loader: ``Authorization: Bearer <display or API token>``.

    An API token acts as its user with the user's role now; a disabled user's token is
    refused (and audited) like a revoked one."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    state = _state()
    if _attempts_exceeded("token"):
        return None
    token = token_for_secret(state.engine, header[7:].strip(), now=state.clock())
    if token is None or token.user_disabled:
        _count_failed_attempt("token")
        detail: dict[str, Any] = {"via": "bearer", "remote": _remote()}
        if token is not None:
            detail.update(token_id=token.token_id, reason="user_disabled")
        _audit("anonymous", "token.failed", detail)
        logger.warning("request with an unknown, revoked or disabled user's bearer token "
                       "refused")
        return None
    if token.kind == "api" and token.user_id is not None and token.username is not None:
        if not request.path.startswith(API_PREFIX):
            # An API token is for the API: it does not open the dashboard, its downloads or
            # the administration routes, even for an administrator (least privilege).
            _audit("anonymous", "token.failed", {"via": "bearer", "remote": _remote(),
                                                 "token_id": token.token_id,
                                                 "reason": "api_token_outside_api"})
            logger.warning("API token %s used outside %s: refused", token.token_id, API_PREFIX)
            return None
        return Principal("user", token.user_id, token.username, token.role, bearer=True,
                         token_id=token.token_id)
    return Principal("token", token.token_id, token.name, token.role, bearer=True)


# --------------------------------------------------------------------------- responses


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mission Watch - {{ title }}</title>
<link rel="stylesheet" href="{{ css }}"></head>
<body class="auth-page"><main class="auth-box">
<h1>Mission Watch</h1>
{% if message %}<p class="auth-message">{{ message }}</p>{% endif %}
{% if form %}
<form method="post" action="{{ action }}">
  <input type="hidden" name="csrf" value="{{ csrf }}">
  <input type="hidden" name="next" value="{{ next }}">
  <label>Username <input name="username" autocomplete="username" required autofocus></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"
         required></label>
  <button type="submit" id="sign-in">Sign in</button>
</form>
<p class="muted">After {{ lockout_failures }} wrong passwords in a row an account is locked for
{{ lockout_minutes }} minutes.</p>
{% endif %}
{% if signed_in %}<form method="post" action="{{ logout }}">
  <input type="hidden" name="csrf" value="{{ csrf }}">
  <a href="/">Back to the dashboard</a> <button type="submit">Sign out</button></form>{% endif %}
</main></body></html>"""


def _csrf_token() -> str:
    token = flask.session.get("mw_csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        flask.session["mw_csrf"] = token
    return token


def _csrf_ok() -> bool:
    expected = flask.session.get("mw_csrf", "")
    given = flask.request.form.get("csrf", "")
    return bool(expected) and hmac.compare_digest(expected, given)


def _render(title: str, *, message: str = "", form: bool = False, next_path: str = "/",
            status: int = 200) -> flask.Response:
    state = _state()
    html = flask.render_template_string(
        _PAGE, title=title, message=message, form=form, next=next_path,
        csrf=_csrf_token(), action=flask.url_for("mw_login"),
        logout=flask.url_for("mw_logout"), css=state.app.get_asset_url("style.css"),
        signed_in=not form and current_user.is_authenticated,
        lockout_failures=state.settings.signin_lockout_failures,
        lockout_minutes=state.settings.signin_lockout_minutes)
    return flask.Response(html, status=status, mimetype="text/html")


_ERROR_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden",
                429: "too_many_requests"}


def _json_error(status: int, message: str, code: str | None = None) -> flask.Response:
    """A JSON error; under :data:`API_PREFIX` in the API's shape (``{"error": {"code",
    "message"}}``), elsewhere ``{"error": message}``."""
    if flask.request.path.startswith(API_PREFIX):
        body: dict[str, Any] = {"error": {"code": code or _ERROR_CODES.get(status, "error"),
                                          "message": message}}
    else:
        body = {"error": message}
    response = flask.jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="Mission Watch"'
    return response


def _safe_next(value: str | None) -> str:
    """A local path to go to after sign-in; anything else (other hosts, schemes) is ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _path_without_token() -> str:
    args = [(k, v) for k, v in flask.request.args.items(multi=True) if k != "token"]
    return flask.request.path + (f"?{urlencode(args)}" if args else "")


# --------------------------------------------------------------------------- the gate


def _callback_required_role() -> str | None:
    """The role needed to run the posted callback, or None for a malformed request."""
    state = _state()
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        return None
    entry = state.app.callback_map.get(body.get("output"))
    if not isinstance(entry, dict) or "callback" not in entry:
        return None  # unknown, or a clientside callback: nothing to run on the server
    if not (_same_dependencies(entry["inputs"], body.get("inputs"))
            and _same_dependencies(entry["state"], body.get("state", []))):
        return None
    if any(output.component_id == PAGES_CONTENT_ID for output in _outputs(entry)):
        pathname = body["inputs"][0].get("value")
        if not isinstance(pathname, str):
            return None
        return page_role(state.app, pathname)
    return callback_role(entry["callback"]) or DEFAULT_ROLE


def _outputs(entry: dict[str, Any]) -> list[Any]:
    output = entry.get("output")
    return list(output) if isinstance(output, (list, tuple)) else [output]


def _same_dependencies(declared: list[dict[str, Any]], posted: Any) -> bool:
    """The posted inputs (or states) are the declared ones, in order (values aside)."""
    if not isinstance(posted, list) or len(posted) != len(declared):
        return False
    for want, got in zip(declared, posted, strict=True):
        if isinstance(want["id"], dict):  # pattern-matching: Dash posts a list of matches
            if not isinstance(got, (list, dict)):
                return False
            continue
        if not isinstance(got, dict) or got.get("id") != want["id"] or \
                got.get("property") != want["property"]:
            return False
    return True


def _only_passive_inputs_changed() -> bool:
    body = flask.request.get_json(silent=True) or {}
    changed = body.get("changedPropIds") or []
    return bool(changed) and all(isinstance(c, str) and c.rsplit(".", 1)[0] in _PASSIVE_INPUTS
                                 for c in changed)


def _session_expired(principal: Principal, now: datetime) -> str | None:
    """Why a password session has ended (idle, too old), or None while it is valid."""
    if principal.kind != "user" or principal.bearer:
        return None
    settings = _state().settings
    auth_at = flask.session.get("mw_auth_at")
    seen = flask.session.get("mw_seen")
    if not isinstance(auth_at, (int, float)) or not isinstance(seen, (int, float)):
        return "incomplete"
    stamp = now.timestamp()
    if stamp - auth_at > settings.session_max_hours * 3600:
        return "max_age"
    if stamp - seen > settings.session_idle_minutes * 60:
        return "idle"
    return None


def _unauthenticated(policy: str) -> flask.Response:
    request = flask.request
    if policy == PAGE and request.method in ("GET", "HEAD"):
        return flask.redirect(flask.url_for("mw_login", next=_path_without_token()))
    return _json_error(401, "sign in required")


def _forbidden(principal: Principal, policy: str, required: str) -> flask.Response:
    body = flask.request.get_json(silent=True) if policy == CALLBACK else None
    target = body.get("output") if isinstance(body, dict) else flask.request.path
    _audit(principal.actor, "access.denied",
           {"role": principal.role, "required": required, "method": flask.request.method,
            "target": str(target)[:200]})
    logger.warning("access denied: %s %s needs %s, %s has %s", flask.request.method,
                   flask.request.path, required, principal.kind, principal.role)
    if policy == PAGE:
        return _render("not allowed", status=403,
                       message=f"This page needs the {required} role; you are signed in as "
                               f"{principal.name} ({principal.role}).")
    return _json_error(403, f"needs the {required} role")


def _exchange_display_token() -> flask.Response:
    """``GET /?token=...``: a display session for a valid token, then the same URL without it."""
    state = _state()
    if _attempts_exceeded("token"):
        return _render("too many attempts", status=429,
                       message="Too many attempts from this address; try again later.")
    token = token_for_secret(state.engine, flask.request.args.get("token", ""), now=state.clock())
    if token is None or token.kind != "display":  # API tokens never become sessions
        _count_failed_attempt("token")
        _audit("anonymous", "token.failed", {"via": "url", "remote": _remote()})
        logger.warning("display link with an unknown or revoked token refused")
        return _render("not valid", status=401,
                       message="This display link is not valid or has been revoked.")
    flask.session.clear()
    login_user(Principal("token", token.token_id, token.name, token.role))
    flask.session.permanent = True  # lives DISPLAY_SESSION_DAYS past its last request
    flask.session["mw_auth_at"] = flask.session["mw_seen"] = state.clock().timestamp()
    _audit(f"token:{token.token_id}", "token.signin",
           {"token_id": token.token_id, "name": token.name, "remote": _remote()})
    logger.info("display token %s exchanged for a session", token.token_id)
    return flask.redirect(_path_without_token())


def _gate() -> flask.Response | None:
    """Runs before every request: answer it here (401/403/redirect) or let it through."""
    request = flask.request
    rule = request.url_rule
    if rule is None or request.method == "OPTIONS":
        return None  # Flask answers 404/405/OPTIONS without running any view
    state = _state()
    policy = state.route_policy(rule.rule)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:
            return _json_error(403, "cross-site request refused", "cross_site")
    if policy == PUBLIC:
        return None
    if policy == PAGE and request.method == "GET" and "token" in request.args:
        return _exchange_display_token()
    principal = current_user
    if not principal.is_authenticated:
        return _unauthenticated(policy)
    now = state.clock()
    expired = _session_expired(principal, now)
    if expired is not None:
        logger.info("session of user %s ended: %s", principal.ident, expired)
        logout_user()
        flask.session.clear()
        return _unauthenticated(policy)
    if policy == PAGE:
        required: str | None = page_role(state.app, request.path)
    elif policy == CALLBACK:
        required = _callback_required_role()
        if required is None:
            return _json_error(400, "not a callback of this app, or not its declared inputs")
    else:
        required = policy
    if role_rank(principal.role) < role_rank(required):
        return _forbidden(principal, policy, required)
    if principal.kind == "user" and not principal.bearer and not (
            policy == CALLBACK and _only_passive_inputs_changed()):
        flask.session["mw_seen"] = now.timestamp()
    return None


_STATIC_PREFIXES = ("/assets/", "/_dash-component-suites/", "/_favicon.ico")


def _security_headers(response: flask.Response) -> flask.Response:
    state = _state()
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(
        state.app, state.settings.basemap_origin)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes form posts Origin: null
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if state.settings.secure_cookies:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    # Nothing is cached, except static code and what a route marked private on purpose (the
    # wall's maps: aggregates only, named by their data version).
    if not flask.request.path.startswith(_STATIC_PREFIXES) and not headers.get(
            "Cache-Control", "").startswith("private"):
        headers["Cache-Control"] = "no-store"
    return response


def content_security_policy(app: dash.Dash, tile_origin: str | None = None) -> str:
    """The CSP: Dash's own inline scripts by hash, MapLibre's blob: workers, data:/blob: images,
    and the configured basemap's tile server (images and fetches) when there is one.

    Styles allow 'unsafe-inline': Plotly and MapLibre insert style elements at run time.
    """
    script_hashes = " ".join(app.csp_hashes())
    tiles = f" {tile_origin}" if tile_origin else ""
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' {script_hashes}",
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: blob:{tiles}",
        "font-src 'self' data:",
        f"connect-src 'self'{tiles}",
        "worker-src 'self' blob:",
        "child-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


# --------------------------------------------------------------------------- views


def _login() -> flask.Response:
    state = _state()
    next_path = _safe_next(flask.request.values.get("next"))
    if flask.request.method == "GET":
        if current_user.is_authenticated:
            return flask.redirect(next_path)
        return _render("sign in", form=True, next_path=next_path)
    if not _csrf_ok():
        return _render("sign in", form=True, next_path=next_path, status=400,
                       message="The form expired; please sign in again.")
    result = authenticate(
        state.engine, flask.request.form.get("username", ""),
        flask.request.form.get("password", ""), now=state.clock(),
        lockout_failures=state.settings.signin_lockout_failures,
        lockout_minutes=state.settings.signin_lockout_minutes, remote=_remote())
    if not result.ok or result.user is None:
        return _render("sign in", form=True, next_path=next_path, status=401,
                       message="Wrong username or password, or the account is locked or "
                               "disabled.")
    user = result.user
    flask.session.clear()  # a fresh session: nothing from before sign-in carries over
    login_user(Principal("user", user.user_id, user.username, user.role, user.session_epoch))
    flask.session.permanent = False
    flask.session["mw_auth_at"] = flask.session["mw_seen"] = state.clock().timestamp()
    flask.session["mw_csrf"] = secrets.token_urlsafe(32)
    return flask.redirect(next_path)


def sign_out() -> None:
    """End the current session; for a password user, every session of theirs (all devices)."""
    principal = current_user
    if principal.is_authenticated and principal.kind == "user" and not principal.bearer:
        state = _state()
        end_sessions(state.engine, principal.ident, actor=principal.actor, now=state.clock())
        logger.info("user %s signed out", principal.ident)
    logout_user()
    flask.session.clear()


def _logout() -> flask.Response:
    if not _csrf_ok():
        return _json_error(400, "form expired")
    sign_out()
    return flask.redirect(flask.url_for("mw_login"))


def _on_signin_throttled(limit: RequestLimit) -> flask.Response:
    state = _state()
    remote = _remote()
    logger.warning("sign-in attempts throttled (%s)", limit.limit)
    with state._lock:
        last = state._throttle_audited.get(remote, 0.0)
        first_in_a_while = time.monotonic() - last > 60
        if first_in_a_while:
            state._throttle_audited[remote] = time.monotonic()
    if first_in_a_while:  # one audit record per address per minute, not one per attempt
        _audit("anonymous", "signin.throttled", {"remote": remote, "limit": str(limit.limit)})
    return _render("too many attempts", status=429,
                   message="Too many sign-in attempts from this address; try again later.")


# --------------------------------------------------------------------------- setup


def load_secret_key(settings: Settings) -> str:
    """``MISSIONWATCH_SECRET_KEY``, else a random key kept in DATA_DIR/secret_key (mode 0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 32:
            raise ValueError(f"{path} holds no usable key; delete it to make a new one") from None
        return key
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    logger.info("created a new session key file in the data directory")
    return key


_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)


class RedactTokens(logging.Filter):
    """Replaces ``token=...`` in log lines (e.g. werkzeug's request lines) with a placeholder."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message.lower():
            record.msg = _TOKEN_IN_TEXT.sub(r"\1[redacted]", message)
            record.args = None
        return True


def init_app(app: dash.Dash, settings: Settings, engine: Engine) -> AuthState:
    """Install sign-in, the gate and the security headers on ``app``'s Flask server."""
    server = app.server
    server.config.update(
        SECRET_KEY=load_secret_key(settings),
        SESSION_COOKIE_NAME="missionwatch_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        # The cookie signature's age limit; password sessions are shorter (checked by the gate)
        PERMANENT_SESSION_LIFETIME=timedelta(days=settings.display_session_days),
        # Requests larger than this are refused before any view runs (roster uploads fit).
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
    )
    try:
        attempt_limits = list(limits.parse_many(settings.signin_rate_limit))
    except ValueError as exc:
        raise ValueError(f"signin_rate_limit: {exc}") from exc
    # counters in the store: every worker process counts the same attempts
    limiter = Limiter(get_remote_address, app=server, storage_uri=f"{ratelimit.SCHEME}://",
                      storage_options={"engine": engine}, default_limits=[],
                      headers_enabled=False)
    state = AuthState(app=app, settings=settings, engine=engine, limiter=limiter,
                      attempt_limits=attempt_limits)
    server.extensions[EXTENSION] = state

    login_manager = LoginManager()
    login_manager.init_app(server)
    login_manager.user_loader(_load_session_principal)
    login_manager.request_loader(_load_bearer_principal)

    login_view = limiter.limit(settings.signin_rate_limit, methods=["POST"],
                               on_breach=_on_signin_throttled)(_login)
    server.add_url_rule("/login", "mw_login", login_view, methods=["GET", "POST"])
    server.add_url_rule("/logout", "mw_logout", _logout, methods=["POST"])

    prefix = app.config.routes_pathname_prefix
    assets = prefix + app.config.assets_url_path.lstrip("/")
    for rule, role in (
        ("/login", PUBLIC),
        ("/logout", ROLES[0]),
        (f"{assets}/<path:filename>", PUBLIC),
        (f"{prefix}_dash-component-suites/<string:package_name>/<path:fingerprinted_path>",
         PUBLIC),
        (f"{prefix}_favicon.ico", PUBLIC),
        (f"{prefix}_dash-layout", ROLES[0]),
        (f"{prefix}_dash-dependencies", ROLES[0]),
        (f"{prefix}_reload-hash", ROLES[0]),
        (f"{prefix}_dash-update-component", CALLBACK),
        (prefix, PAGE),
        (f"{prefix}<path:path>", PAGE),
    ):
        declare_route(server, rule, role)
    for page in dash.page_registry.values():
        role = page.get("min_role", DEFAULT_ROLE)
        if role not in ROLES:
            raise ValueError(f"page {page['module']}: min_role must be one of "
                             f"{', '.join(ROLES)}, got {role!r}")
    server.before_request(_gate)
    server.after_request(_security_headers)
    redactor = RedactTokens()
    if not any(isinstance(f, RedactTokens) for f in logging.getLogger("werkzeug").filters):
        logging.getLogger("werkzeug").addFilter(redactor)
    return state


def current_principal() -> Principal | None:
    """The signed-in principal of this request, or None."""
    principal = current_user
    return principal if principal.is_authenticated else None


def current_actor() -> str:
    """Who this request acts as, for the audit log and outreach records ("unknown" if none)."""
    principal = current_principal()
    return principal.actor if principal is not None else "unknown"
