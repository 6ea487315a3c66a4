"""A drill's after-action report (:mod:`layers.aar`), from the store, served as HTML and CSV.

``GET /exports/drill/<id>/report.html`` (printable, shown by the browser under its own strict
policy) and ``/exports/drill/<id>/report.csv`` (one file, a ``section`` per table), for
coordinators. Like every export, each file is written whole before a byte is sent and audited
(``drill.report``: drill, format, rows, file name, SHA-256); EXERCISE is in its name.

Who the drill's hazards affected after each inject is counted on one impact state of every
hazard the scenario makes (built once per report, against the current roster), with the
hazards in force at each inject's minute picked out of it: the same pairs, the same union
counts as the drill page, without rebuilding a state per inject or touching the page's cache.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import flask
import pandas as pd

from dashboard import auth
from dashboard.downloads import _plain, _written, file_response
from dashboard.drills import DRILL_PREFIX
from dashboard.services import HazardState, Services
from feeds.model import Hazard
from layers.aar import REPORT_CSP, AfterAction, after_action, report_csv, report_html
from layers.scenarios import Scenario, hazards_at, parse_scenario
from store.db import record_audit
from store.drills import Drill, DrillNotFound, drill_events, get_drill
from store.outreach import Board, history, list_boards

logger = logging.getLogger(__name__)

FORMATS = ("html", "csv")
REPORT_RULES = {fmt: f"/exports/drill/<int:drill_id>/report.{fmt}" for fmt in FORMATS}
# Shown by the browser: it may load nothing and run nothing, only its own inline style.
REPORT_POLICY = f"{REPORT_CSP}; frame-ancestors 'none'"


def report_url(drill_id: int, fmt: str) -> str:
    """The link of a drill's report as ``html`` or ``csv``."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if isinstance(drill_id, bool) or not isinstance(drill_id, int) or drill_id < 1:
        raise ValueError(f"drill_id must be a positive int, got {drill_id!r}")
    return REPORT_RULES[fmt].replace("<int:drill_id>", str(drill_id))


def every_hazard(scenario: Scenario, drill: Drill) -> list[Hazard]:
    """Every hazard the scenario's injects make for this drill, once each, in firing order
    (each inject but a cancel is in force at its own minute)."""
    seen: dict[str, Hazard] = {}
    for minute in sorted({item.at_minutes for item in scenario.injects}):
        for hazard in hazards_at(scenario, minute, drill_id=drill.drill_id,
                                 started_at=drill.started_at):
            seen.setdefault(hazard.hazard_id, hazard)
    return list(seen.values())


def drill_boards(services: Services, drill_id: int) -> list[Board]:
    """The drill's exercise outreach boards (open or closed), oldest first: those whose
    hazards are all this drill's."""
    prefix = f"{DRILL_PREFIX}{drill_id}:"
    boards = [b for b in list_boards(services.engine, exercise=True, include_closed=True)
              if b.hazard_ids and all(h.startswith(prefix) for h in b.hazard_ids)]
    return sorted(boards, key=lambda b: b.board_id)


def _report_state(services: Services, drill: Drill, hazards: list[Hazard]) -> HazardState:
    """The impact of all the drill's hazards on the current roster (not cached: a report is
    asked for now and then; the drill page keeps its own state)."""
    with services._lock:
        data = services._roster_locked()
        key = ("drill-report", drill.drill_id, data.version,
               tuple(h.hazard_id for h in hazards))
        return services.build_state(key, data, hazards)


def build_report(services: Services, drill_id: int, now: datetime) -> AfterAction:
    """Drill ``drill_id``'s after-action report as of ``now`` (:class:`DrillNotFound`)."""
    drill = get_drill(services.engine, drill_id)
    scenario = parse_scenario(drill.scenario_json or "", origin=f"drill {drill.drill_id}")
    state = _report_state(services, drill, every_hazard(scenario, drill))
    roster = state.roster
    boards = drill_boards(services, drill.drill_id)
    frames = [history(services.engine, b.board_id) for b in boards]
    events = pd.concat(frames, ignore_index=True) if frames else None
    return after_action(
        drill, scenario, now=now, clock_events=drill_events(services.engine, drill.drill_id),
        hazard_ids=state.table["hazard_id"], pairs=state.pairs, codes=roster.codes,
        locations=roster.locations, missions=roster.missions, people=roster.people,
        boards=boards, events=events)


def report_export(services: Services, drill_id: int, fmt: str,
                  export_dir: Path) -> flask.Response:
    """The report as HTML or CSV: written whole first, audited, EXERCISE in its name."""
    now = datetime.now(timezone.utc)
    try:
        report = build_report(services, drill_id, now)
    except DrillNotFound as exc:
        return _plain(f"{exc}: the link may be wrong, or the store was replaced", 404)
    actor = auth.current_actor()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    name = f"missionwatch-EXERCISE-drill-{report.drill.drill_id}-report-{stamp}.{fmt}"
    text = report_html(report) if fmt == "html" else ""

    def write(temp: Path) -> None:
        if fmt == "html":
            temp.write_bytes(text.encode("utf-8"))
        else:
            report_csv(report, temp, extra_header=[("exported_by", actor)])

    body = _written(export_dir, f".{fmt}", write, "drill report")
    if isinstance(body, flask.Response):
        return body
    digest = hashlib.sha256(body).hexdigest()
    detail: dict[str, Any] = {"drill_id": report.drill.drill_id, "format": fmt,
                              "rows": report.rows, "file": name, "sha256": digest,
                              "exercise": True}
    with services.engine.begin() as connection:
        record_audit(connection, actor, "drill.report", detail, now)
    logger.info("drill %d report exported: %s, %d rows", report.drill.drill_id, fmt,
                report.rows)
    return file_response(body, fmt, name, REPORT_POLICY)


def init_app(app: Any, services: Services) -> None:
    """Register the report's two routes for coordinators."""
    server = app.server
    export_dir = services.settings.data_path / "exports"
    for fmt, rule in REPORT_RULES.items():
        server.add_url_rule(
            rule, f"mw_drill_report_{fmt}",
            lambda drill_id, fmt=fmt: report_export(services, drill_id, fmt, export_dir),
            methods=["GET"])
        auth.declare_route(server, rule, "coordinator")
