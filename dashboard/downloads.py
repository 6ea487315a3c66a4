"""File downloads served by the dashboard; each one declares its role and is audited."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import dash
import flask
from sqlalchemy.engine import Engine

from dashboard import auth
from dashboard.services import UnknownIncident, current, incident_view, parse_keys
from layers.calllist import export_header, write_csv, write_xlsx
from store.audit import MAX_EVENTS, audit_csv, query_audit
from store.db import record_audit

logger = logging.getLogger(__name__)

AUDIT_CSV = "/admin/audit.csv"
CALLLIST = "/exports/calllist"          # + ".csv" or ".xlsx"; ?incidents=k1,k2[&split=...]
CALLLIST_FORMATS = ("csv", "xlsx")
SPLITS = ("office", "mission")
MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def calllist_url(keys: str, fmt: str, split: str | None = None) -> str:
    """The download link of a call list for incident keys ``"k1,k2"``."""
    if fmt not in CALLLIST_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(CALLLIST_FORMATS)}, got {fmt!r}")
    query = {"incidents": keys} | ({"split": split} if split else {})
    return f"{CALLLIST}.{fmt}?{urlencode(query, safe=':,')}"


def _plain(message: str, status: int) -> flask.Response:
    return flask.Response(message + "\n", status=status, mimetype="text/plain")


def calllist_export(fmt: str, export_dir: Path) -> flask.Response:
    """A call list for the incidents in ``?incidents=``, as CSV or XLSX, audited.

    The file is written whole to a private temporary file first: a full disk or any write
    error gives a clear 507/500 answer and no half file; the audit records who exported which
    hazards, how many rows, and the file's SHA-256.
    """
    args = flask.request.args
    split = args.get("split") or "office"
    if split not in SPLITS:
        return _plain(f"split must be one of {', '.join(SPLITS)}", 400)
    now = datetime.now(timezone.utc)
    try:
        keys = parse_keys(args.get("incidents") or "")
        view = incident_view(current(), keys, now)
    except (ValueError, UnknownIncident) as exc:
        return _plain(str(exc), 404 if isinstance(exc, UnknownIncident) else 400)
    principal = auth.current_principal()
    actor = principal.actor if principal else "unknown"
    hazards = view.hazards.loc[:, ["hazard_id", "event", "severity"]]
    header = export_header(hazards, len(view.calls), generated_at=now)
    header.append(("exported_by", actor))
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    name = f"missionwatch-calllist-{stamp}.{fmt}"
    export_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temp = tempfile.mkstemp(prefix=".export-", suffix=f".{fmt}", dir=export_dir)
    os.close(handle)
    try:
        if fmt == "csv":
            write_csv(view.calls, temp, header_lines=header)
        else:
            write_xlsx(view.calls, temp, summary=header, split_by=split)  # type: ignore[arg-type]
        body = Path(temp).read_bytes()
    except OSError as exc:
        logger.error("call list export failed: %s (%d hazards)", exc.strerror or exc,
                     len(hazards))
        full = getattr(exc, "errno", None) == 28
        return _plain("The export could not be written (" +
                      ("the server's disk is full" if full else (exc.strerror or "write error"))
                      + "). Nothing was exported; try again or tell an administrator.",
                      507 if full else 500)
    finally:
        Path(temp).unlink(missing_ok=True)
    digest = hashlib.sha256(body).hexdigest()
    with current().engine.begin() as connection:
        record_audit(connection, actor, "calllist.export", {
            "hazards": list(hazards["hazard_id"]), "rows": len(view.calls), "format": fmt,
            "split": split if fmt == "xlsx" else None, "file": name, "sha256": digest,
        }, now)
    logger.info("call list exported: %s, %d rows, %d hazards", fmt, len(view.calls),
                len(hazards))
    response = flask.Response(body, mimetype=MIMETYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


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


def init_app(app: dash.Dash, engine: Engine, export_dir: Path | None = None) -> None:
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
    target = export_dir or Path(tempfile.gettempdir()) / "missionwatch-exports"
    for fmt in CALLLIST_FORMATS:
        rule = f"{CALLLIST}.{fmt}"
        server.add_url_rule(rule, f"mw_calllist_{fmt}",
                            lambda fmt=fmt: calllist_export(fmt, target), methods=["GET"])
        auth.declare_route(server, rule, "coordinator")
