"""File downloads served by the dashboard; each one declares its role and is audited."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import dash
import flask
from sqlalchemy.engine import Engine

from dashboard import auth
from store.audit import MAX_EVENTS, audit_csv, query_audit
from store.db import record_audit

logger = logging.getLogger(__name__)

AUDIT_CSV = "/admin/audit.csv"


def parse_day(value: str | None, name: str) -> datetime | None:
    """``YYYY-MM-DD`` as midnight UTC, or None when empty; ValueError names the field."""
    if not value:
        return None
    try:
        return datetime.strptime(value.strip()[:10], "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"{name} must be a date like 2026-11-28, got {value!r}") from None


def audit_filters(args: dict[str, str | None]) -> dict[str, object]:
    """The audit-log filters from a request's arguments (action, actor, since, until days)."""
    until = parse_day(args.get("until"), "until")
    return {
        "action": (args.get("action") or "").strip()[:64] or None,
        "actor": (args.get("actor") or "").strip()[:64] or None,
        "since": parse_day(args.get("since"), "since"),
        "until": None if until is None else until + timedelta(days=1),  # the whole last day
    }


def init_app(app: dash.Dash, engine: Engine) -> None:
    """Register the download routes on ``app``'s server, each with its role declared."""
    server = app.server

    def audit_log_csv() -> flask.Response:
        """The audit log as CSV, filtered like the admin page; the export is itself audited."""
        try:
            filters = audit_filters(flask.request.args.to_dict())
        except ValueError as exc:
            return flask.Response(str(exc), status=400, mimetype="text/plain")
        events = query_audit(engine, limit=MAX_EVENTS, **filters)  # type: ignore[arg-type]
        principal = auth.current_principal()
        actor = principal.actor if principal else "unknown"
        with engine.begin() as connection:
            record_audit(connection, actor, "audit.export", {
                "rows": len(events), "format": "csv",
                "filters": {k: (v.isoformat() if isinstance(v, datetime) else v)
                            for k, v in filters.items()},
            }, datetime.now(timezone.utc))
        logger.info("audit log exported: %d rows", len(events))
        response = flask.Response(audit_csv(events), mimetype="text/csv")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="missionwatch-audit-{stamp}.csv"')
        return response

    server.add_url_rule(AUDIT_CSV, "mw_audit_csv", audit_log_csv, methods=["GET"])
    auth.declare_route(server, AUDIT_CSV, "admin")
