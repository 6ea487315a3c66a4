"""File downloads served by the dashboard; each one declares its role and is audited.

Every export is written whole to a private temporary file before a byte is sent: a full disk
or a write error answers 507/500 with a plain message, never half a file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import dash
import flask
import pandas as pd
from sqlalchemy.engine import Engine

from dashboard import auth
from dashboard.services import (
    BoardView,
    UnknownIncident,
    board_view,
    current,
    incident_view,
    parse_keys,
)
from layers.calllist import export_header, write_csv, write_xlsx
from layers.outreach import GROUPINGS
from layers.outreach_export import (
    CALL_SHEET_CSP,
    board_csv,
    board_header,
    board_xlsx,
    call_sheet_html,
    duty_vcards,
)
from layers.outreach_export import SPLITS as BOARD_SPLITS
from store.audit import MAX_EVENTS, audit_csv, query_audit
from store.db import record_audit
from store.outreach import BoardNotFound

logger = logging.getLogger(__name__)

AUDIT_CSV = "/admin/audit.csv"
CALLLIST = "/exports/calllist"          # + ".csv" or ".xlsx"; ?incidents=k1,k2[&split=...]
CALLLIST_FORMATS = ("csv", "xlsx")
SPLITS = ("office", "mission")
MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
    "vcf": "text/vcard; charset=utf-8",
}
# Outreach board exports: the board as CSV or XLSX (?split=), a printable call sheet
# (?group=), the affected missions' duty contacts as vCards.
BOARD_EXPORT = "/exports/board"
BOARD_EXPORT_RULES = {
    "csv": f"{BOARD_EXPORT}/<int:board_id>.csv",
    "xlsx": f"{BOARD_EXPORT}/<int:board_id>.xlsx",
    "html": f"{BOARD_EXPORT}/<int:board_id>/callsheet.html",
    "vcf": f"{BOARD_EXPORT}/<int:board_id>/duty.vcf",
}
BOARD_EXPORT_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "csv": {}, "xlsx": {"split": BOARD_SPLITS}, "html": {"group": GROUPINGS}, "vcf": {},
}
# The call sheet is shown by the browser, not downloaded: it may load nothing and run nothing,
# only its own inline style (the document carries the same policy for when it is saved).
CALL_SHEET_POLICY = f"{CALL_SHEET_CSP}; frame-ancestors 'none'"


def calllist_url(keys: str, fmt: str, split: str | None = None) -> str:
    """The download link of a call list for incident keys ``"k1,k2"``."""
    if fmt not in CALLLIST_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(CALLLIST_FORMATS)}, got {fmt!r}")
    query = {"incidents": keys} | ({"split": split} if split else {})
    return f"{CALLLIST}.{fmt}?{urlencode(query, safe=':,')}"


def board_export_url(board_id: int, fmt: str, **options: str) -> str:
    """The link of a board export: ``fmt`` csv, xlsx (``split=``), html (the call sheet,
    ``group=``) or vcf (duty contacts)."""
    if fmt not in BOARD_EXPORT_RULES:
        raise ValueError(f"fmt must be one of {', '.join(BOARD_EXPORT_RULES)}, got {fmt!r}")
    if isinstance(board_id, bool) or not isinstance(board_id, int) or board_id < 1:
        raise ValueError(f"board_id must be a positive int, got {board_id!r}")
    allowed = BOARD_EXPORT_OPTIONS[fmt]
    for key, value in options.items():
        if key not in allowed:
            raise ValueError(f"{fmt} exports take {', '.join(allowed) or 'no options'}, "
                             f"got {key!r}")
        if value and value not in allowed[key]:
            raise ValueError(f"{key} must be one of {', '.join(allowed[key])}, got {value!r}")
    path = BOARD_EXPORT_RULES[fmt].replace("<int:board_id>", str(board_id))
    query = {k: v for k, v in options.items() if v}
    return f"{path}?{urlencode(query)}" if query else path


def _plain(message: str, status: int) -> flask.Response:
    return flask.Response(message + "\n", status=status, mimetype="text/plain")


def _written(export_dir: Path, suffix: str, write: Callable[[Path], Any],
             what: str) -> bytes | flask.Response:
    """The bytes ``write`` puts in a private temporary file (removed afterwards), or the
    507/500 answer when it cannot be written (a full disk, a write error)."""
    export_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temp = tempfile.mkstemp(prefix=".export-", suffix=suffix, dir=export_dir)
    os.close(handle)
    try:
        write(Path(temp))
        return Path(temp).read_bytes()
    except OSError as exc:
        logger.error("%s export failed: %s", what, exc.strerror or exc)
        full = getattr(exc, "errno", None) == 28
        return _plain("The export could not be written (" +
                      ("the server's disk is full" if full else (exc.strerror or "write error"))
                      + "). Nothing was exported; try again or tell an administrator.",
                      507 if full else 500)
    finally:
        Path(temp).unlink(missing_ok=True)


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
    actor = auth.current_actor()
    hazards = view.hazards.loc[:, ["hazard_id", "event", "severity"]]
    header = export_header(hazards, len(view.calls), generated_at=now)
    header.append(("exported_by", actor))
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    name = f"missionwatch-calllist-{stamp}.{fmt}"

    def write(temp: Path) -> None:
        if fmt == "csv":
            write_csv(view.calls, temp, header_lines=header)
        else:
            write_xlsx(view.calls, temp, summary=header, split_by=split)  # type: ignore[arg-type]

    body = _written(export_dir, f".{fmt}", write, "call list")
    if isinstance(body, flask.Response):
        return body
    digest = hashlib.sha256(body).hexdigest()
    with current().engine.begin() as connection:
        record_audit(connection, actor, "calllist.export", {
            "hazards": list(hazards["hazard_id"]), "rows": len(view.calls), "format": fmt,
            "split": split if fmt == "xlsx" else None, "file": name, "sha256": digest,
        }, now)
    logger.info("call list exported: %s, %d rows, %d hazards", fmt, len(view.calls),
                len(hazards))
    response = flask.Response(body, content_type=MIMETYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class _OwnPolicyResponse(flask.Response):
    """A response sent with its own Content-Security-Policy.

    The app sets its (looser) policy on every response after the view has run; this one puts
    its stricter policy back as the headers are sent.
    """

    policy = ""

    def get_wsgi_headers(self, environ: Any) -> Any:
        headers = super().get_wsgi_headers(environ)
        if self.policy:
            headers["Content-Security-Policy"] = self.policy
        return headers


def _board_hazards(view: BoardView) -> pd.DataFrame:
    """hazard_id, event, severity, area_desc of the board's hazards, with those the feeds no
    longer list (named, so the export still says what the board was for)."""
    columns = ["hazard_id", "event", "severity", "area_desc"]
    records = [{c: h.get(c, "") for c in columns} for h in view.hazards.to_dict("records")]
    records += [{"hazard_id": h, "event": "no longer listed by its feed", "severity": "",
                 "area_desc": ""} for h in view.missing_hazards]
    return pd.DataFrame(records, columns=columns)


def board_export(board_id: int, fmt: str, export_dir: Path) -> flask.Response:
    """An outreach board as CSV, XLSX, a printable call sheet or duty vCards, audited.

    Exercise boards say EXERCISE in every export (header line, watermark, vCard note, file
    name). The audit records who exported which board, the format, rows (cards for vCards),
    the file name and its SHA-256.
    """
    choice = None
    for option, allowed in BOARD_EXPORT_OPTIONS[fmt].items():
        choice = flask.request.args.get(option) or "office"
        if choice not in allowed:
            return _plain(f"{option} must be one of {', '.join(allowed)}", 400)
    now = datetime.now(timezone.utc)
    services = current()
    try:
        view = board_view(services, board_id, now)
    except BoardNotFound as exc:
        return _plain(f"{exc}: the link may be wrong, or the store was replaced", 404)
    board, rows = view.board, view.rows
    actor = auth.current_actor()
    hazards = _board_hazards(view)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    prefix = f"missionwatch-{'EXERCISE-' if board.exercise else ''}board-{board.board_id}"
    name = {"csv": f"{prefix}-{stamp}.csv", "xlsx": f"{prefix}-{stamp}.xlsx",
            "html": f"{prefix}-callsheet-{stamp}.html",
            "vcf": f"{prefix}-duty-{stamp}.vcf"}[fmt]
    count = len(rows)
    text = ""
    if fmt == "html":
        text = call_sheet_html(board.name, hazards, rows, view.progress, view.liaisons,
                               generated_at=now, exercise=board.exercise,
                               group_by=choice or "office")
    elif fmt == "vcf":
        text = duty_vcards(rows, services.roster().missions, exercise=board.exercise)
        count = text.count("BEGIN:VCARD\r\n")

    def write(temp: Path) -> None:
        if fmt in ("html", "vcf"):
            temp.write_bytes(text.encode("utf-8"))
            return
        header = board_header(board.name, hazards, rows, generated_at=now,
                              exercise=board.exercise)
        header.append(("exported_by", actor))
        if fmt == "csv":
            board_csv(rows, temp, header)
        else:
            board_xlsx(rows, temp, header, split_by=choice or "office")

    body = _written(export_dir, f".{fmt}", write, "outreach board")
    if isinstance(body, flask.Response):
        return body
    digest = hashlib.sha256(body).hexdigest()
    detail: dict[str, Any] = {"board_id": board.board_id, "format": fmt, "rows": count,
                              "file": name, "sha256": digest, "exercise": board.exercise}
    for option in BOARD_EXPORT_OPTIONS[fmt]:
        detail[option] = choice
    with services.engine.begin() as connection:
        record_audit(connection, actor, "outreach.export", detail, now)
    logger.info("outreach board %d exported: %s, %d rows", board.board_id, fmt, count)
    return file_response(body, fmt, name, CALL_SHEET_POLICY)


def file_response(body: bytes, fmt: str, name: str, html_policy: str) -> flask.Response:
    """An export as the browser should get it: a printable HTML page shown in place under its
    own policy (``html_policy``), any other format downloaded as ``name``."""
    if fmt == "html":
        response = _OwnPolicyResponse(body, content_type=MIMETYPES[fmt])
        response.policy = html_policy
        response.headers["Content-Security-Policy"] = html_policy
        response.headers["Content-Disposition"] = f'inline; filename="{name}"'
        return response
    response = flask.Response(body, content_type=MIMETYPES[fmt])
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
        actor = auth.current_actor()
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
    for fmt, rule in BOARD_EXPORT_RULES.items():
        server.add_url_rule(
            rule, f"mw_board_export_{fmt}",
            lambda board_id, fmt=fmt: board_export(board_id, fmt, target), methods=["GET"])
        auth.declare_route(server, rule, "coordinator")
