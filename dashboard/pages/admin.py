"""Administration: users and roles, wall-display tokens, and the audit log (filter, export).

Admins only: the page (its routing callback) and every callback below declare ``admin``.
Generated passwords and tokens are shown once, in the response to the admin who made them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import urlencode

import dash
from dash import Input, Output, State, ctx, dcc, html

from dashboard import auth, ids
from dashboard.downloads import AUDIT_CSV, audit_filters
from dashboard.services import current
from store import AccountError
from store.audit import audit_actions, query_audit
from store.users import (
    ROLES,
    create_user,
    generate_password,
    issue_token,
    list_tokens,
    list_users,
    revoke_token,
    set_disabled,
    set_role,
)

dash.register_page(__name__, path="/admin", title="Mission Watch - administration",
                   name="Administration", min_role="admin")

AUDIT_ROWS = 200


def _when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _table(header: list[str], rows: list[list[str]], table_id: str) -> html.Table:
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in header])),
                       html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows])],
                      id=table_id, className="counts admin")


def _users_table() -> html.Table:
    users = list_users(current().engine)
    return _table(["User", "Role", "State", "Last sign-in", "Locked until"], [
        [u.username, u.role, "disabled" if u.disabled else "active", _when(u.last_sign_in),
         _when(u.locked_until)] for u in users], ids.ADMIN_USERS)


def _tokens_table() -> html.Table:
    tokens = list_tokens(current().engine)
    return _table(["Id", "Kind", "Name", "User", "Role", "Issued", "By", "Last used",
                   "Revoked"], [
        [str(t.token_id), t.kind, t.name, t.username or "", t.role, _when(t.created_at),
         t.created_by, _when(t.last_used_at), _when(t.revoked_at)] for t in tokens],
        ids.ADMIN_TOKENS)


def _audit_table(action: str | None, actor: str | None, since: str | None) -> tuple:
    args = {"action": action or "", "actor": actor or "", "since": since or ""}
    try:
        filters = audit_filters(args)
    except ValueError as exc:
        return html.P(str(exc), className="notice", id=ids.ADMIN_AUDIT_TABLE), AUDIT_CSV
    events = query_audit(current().engine, limit=AUDIT_ROWS, **filters)  # type: ignore[arg-type]
    table = _table(["Id", "At", "Actor", "Action", "Detail"], [
        [str(e.event_id), _when(e.at), e.actor, e.action,
         json.dumps(e.detail, sort_keys=True)[:200]] for e in events], ids.ADMIN_AUDIT_TABLE)
    query = urlencode({k: v for k, v in args.items() if v})
    return table, AUDIT_CSV + (f"?{query}" if query else "")


def layout(**_query: str) -> html.Div:
    actions = audit_actions(current().engine)
    audit, export = _audit_table(None, None, None)
    return html.Div([
        html.H2("Users"),
        html.Div([
            dcc.Input(id=ids.ADMIN_USER_NAME, placeholder="username", type="text"),
            dcc.Dropdown(id=ids.ADMIN_USER_ROLE, options=list(ROLES), value="coordinator",
                         clearable=False, className="role-select"),
            html.Button("Add user", id=ids.ADMIN_USER_ADD),
            html.Button("Set role", id=ids.ADMIN_USER_SET_ROLE),
            html.Button("Disable", id=ids.ADMIN_USER_DISABLE),
            html.Button("Enable", id=ids.ADMIN_USER_ENABLE),
        ], className="admin-form"),
        html.Div(id=ids.ADMIN_USER_RESULT, className="admin-result"),
        _users_table(),
        html.H2("Tokens"),
        html.P("Wall-display tokens are issued here; API tokens act as a user and are issued "
               "with 'python app.py users token --api USERNAME'. Revoke either kind by id.",
               className="muted"),
        html.Div([
            dcc.Input(id=ids.ADMIN_TOKEN_NAME, placeholder="display name", type="text"),
            html.Button("Issue display token", id=ids.ADMIN_TOKEN_ISSUE),
            dcc.Input(id=ids.ADMIN_TOKEN_ID, placeholder="token id", type="number", min=1),
            html.Button("Revoke", id=ids.ADMIN_TOKEN_REVOKE),
        ], className="admin-form"),
        html.Div(id=ids.ADMIN_TOKEN_RESULT, className="admin-result"),
        _tokens_table(),
        html.H2("Audit log"),
        html.Div([
            dcc.Dropdown(id=ids.ADMIN_AUDIT_ACTION, options=actions, placeholder="any action",
                         className="role-select"),
            dcc.Input(id=ids.ADMIN_AUDIT_ACTOR, placeholder="actor contains", type="text",
                      debounce=True),
            dcc.Input(id=ids.ADMIN_AUDIT_SINCE, placeholder="since YYYY-MM-DD", type="text",
                      debounce=True),
            html.A("Export CSV (audited)", id=ids.ADMIN_AUDIT_EXPORT, href=export),
        ], className="admin-form"),
        html.P(f"The newest {AUDIT_ROWS} matching events; the CSV has all of them.",
               className="muted"),
        html.Div(audit, id=f"{ids.ADMIN_AUDIT_TABLE}-wrap"),
    ])


@auth.callback("admin", Output(ids.ADMIN_USER_RESULT, "children"),
               Output(ids.ADMIN_USERS, "children"),
               Input(ids.ADMIN_USER_ADD, "n_clicks"), Input(ids.ADMIN_USER_SET_ROLE, "n_clicks"),
               Input(ids.ADMIN_USER_DISABLE, "n_clicks"), Input(ids.ADMIN_USER_ENABLE, "n_clicks"),
               State(ids.ADMIN_USER_NAME, "value"), State(ids.ADMIN_USER_ROLE, "value"),
               prevent_initial_call=True)
def user_action(_add: int | None, _set: int | None, _disable: int | None, _enable: int | None,
                username: str | None, role: str | None) -> tuple:
    """Add a user (a generated password, shown once), change a role, disable or enable."""
    trigger = ctx.triggered_id
    if trigger is None or not username:
        raise dash.exceptions.PreventUpdate
    engine, now, actor = current().engine, datetime.now(timezone.utc), auth.current_actor()
    try:
        if trigger == ids.ADMIN_USER_ADD:
            password = generate_password()
            user = create_user(engine, username, role or "", password, actor=actor, now=now)
            message: list = [f"Added {user.username} ({user.role}). Password, shown only now: ",
                             html.Code(password, id=f"{ids.ADMIN_USER_RESULT}-password")]
        elif trigger == ids.ADMIN_USER_SET_ROLE:
            user = set_role(engine, username, role or "", actor=actor, now=now)
            message = [f"{user.username} is now {user.role}; their sessions have ended."]
        else:
            disable = trigger == ids.ADMIN_USER_DISABLE
            user = set_disabled(engine, username, disable, actor=actor, now=now)
            message = [f"{user.username} is {'disabled' if disable else 'enabled'}."]
    except AccountError as exc:
        message = [f"Refused: {exc}"]
    return message, _users_table().children


@auth.callback("admin", Output(ids.ADMIN_TOKEN_RESULT, "children"),
               Output(ids.ADMIN_TOKENS, "children"),
               Input(ids.ADMIN_TOKEN_ISSUE, "n_clicks"), Input(ids.ADMIN_TOKEN_REVOKE, "n_clicks"),
               State(ids.ADMIN_TOKEN_NAME, "value"), State(ids.ADMIN_TOKEN_ID, "value"),
               prevent_initial_call=True)
def token_action(_issue: int | None, _revoke: int | None, name: str | None,
                 token_id: int | None) -> tuple:
    """Issue a display token (shown once, with its wall link) or revoke one at once."""
    trigger = ctx.triggered_id
    engine, now, actor = current().engine, datetime.now(timezone.utc), auth.current_actor()
    try:
        if trigger == ids.ADMIN_TOKEN_ISSUE and name:
            token, secret = issue_token(engine, name, actor=actor, now=now)
            message: list = [f"Token {token.token_id} for {token.name}. Open the wall at "
                             "/?token=<token> or send 'Authorization: Bearer <token>'. "
                             "Token, shown only now: ",
                             html.Code(secret, id=f"{ids.ADMIN_TOKEN_RESULT}-secret")]
        elif trigger == ids.ADMIN_TOKEN_REVOKE and token_id:
            token = revoke_token(engine, int(token_id), actor=actor, now=now)
            message = [f"Token {token.token_id} ({token.name}) is revoked."]
        else:
            raise dash.exceptions.PreventUpdate
    except AccountError as exc:
        message = [f"Refused: {exc}"]
    return message, _tokens_table().children


@auth.callback("admin", Output(f"{ids.ADMIN_AUDIT_TABLE}-wrap", "children"),
               Output(ids.ADMIN_AUDIT_EXPORT, "href"),
               Input(ids.ADMIN_AUDIT_ACTION, "value"), Input(ids.ADMIN_AUDIT_ACTOR, "value"),
               Input(ids.ADMIN_AUDIT_SINCE, "value"), prevent_initial_call=True)
def filter_audit(action: str | None, actor: str | None, since: str | None) -> tuple:
    """The audit table and the export link for the chosen filters."""
    return _audit_table(action, actor, since)
