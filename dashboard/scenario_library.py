"""The drill scenario library as coordinators see it: the bundled scenarios plus their own.

Bundled scenarios live in ``data/scenarios`` (read-only, part of the release); scenarios written
on the scenario editor live in ``DATA_DIR/scenarios/<name>.geojson``, in the same file format
(``data/scenarios/README.md``), so ``layers.scenarios.load_library(directory)`` reads either.

* :func:`library` — every scenario a drill can be started from, by name; authored ones are
  :class:`AuthoredScenario` (a :class:`~layers.scenarios.Scenario` that says where it lives).
* :func:`save_scenario` — validate, refuse a bundled or taken name, write atomically (a temp
  file in the same directory, then ``os.replace``), audit ``scenario.save`` with the name, the
  number of injects and the SHA-256 of the bytes written.
* :func:`jurisdiction_problems` — the README's rule that every inject lies in or near one of the
  scenario's jurisdictions and that each jurisdiction is touched by some inject.

Errors::

    ScenarioError (layers.scenarios; also ValueError)   the scenario itself is invalid
    SaveRefused (also ValueError)                        valid, but it cannot be saved: a bundled
                                                         or taken name, a shape outside its
                                                         jurisdictions, a file too large

No Dash here: the page (``dashboard/pages/scenario_editor.py``) and the drills page call it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy.engine import Engine

from layers.geography import load_geography
from layers.scenarios import (
    FILE_SUFFIX,
    Scenario,
    ScenarioError,
    load_library,
    parse_scenario,
    scenario_to_geojson,
)
from settings import Settings
from store.db import record_audit

logger = logging.getLogger(__name__)

AUTHORED_FOLDER = "scenarios"
#: How far (km) an inject may lie outside every jurisdiction of its scenario (at sea, say).
NEAR_KM = 200.0
#: Largest file the editor writes; shapes of a few hundred vertices stay far below it.
MAX_FILE_BYTES = 1_000_000
SAVE_ACTION = "scenario.save"


class SaveRefused(ValueError):
    """A valid scenario that cannot be saved; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class AuthoredScenario(Scenario):
    """A scenario written on the editor (not bundled), with the file it was read from."""

    path: Path | None = None


@dataclasses.dataclass(frozen=True)
class SavedScenario:
    """What :func:`save_scenario` wrote."""

    scenario: Scenario
    path: Path
    sha256: str
    replaced: bool          # an authored scenario of the same name was overwritten


def authored_dir(settings: Settings) -> Path:
    """Where authored scenarios live: ``DATA_DIR/scenarios``."""
    return settings.data_path / AUTHORED_FOLDER


def bundled_names() -> frozenset[str]:
    """Names of the bundled scenarios (file stems; cheap, no parsing)."""
    from layers.scenarios import LIBRARY_DIR

    return frozenset(p.name[: -len(FILE_SUFFIX)] for p in LIBRARY_DIR.glob(f"*{FILE_SUFFIX}"))


def authored_names(settings: Settings) -> frozenset[str]:
    """Names of the authored scenario files (cheap, no parsing)."""
    folder = authored_dir(settings)
    if not folder.is_dir():
        return frozenset()
    return frozenset(p.name[: -len(FILE_SUFFIX)] for p in folder.glob(f"*{FILE_SUFFIX}"))


def _authored(scenario: Scenario, path: Path) -> AuthoredScenario:
    fields = {f.name: getattr(scenario, f.name) for f in dataclasses.fields(Scenario)}
    return AuthoredScenario(**fields, path=path)


def load_authored(settings: Settings) -> tuple[dict[str, AuthoredScenario], list[str]]:
    """The authored scenarios by name, and a problem line for each file that was skipped.

    A broken or misnamed file is skipped (and logged) rather than hiding the whole library.
    """
    folder = authored_dir(settings)
    found: dict[str, AuthoredScenario] = {}
    problems: list[str] = []
    if not folder.is_dir():
        return found, problems
    bundled = bundled_names()
    for path in sorted(folder.glob(f"*{FILE_SUFFIX}")):
        stem = path.name[: -len(FILE_SUFFIX)]
        try:
            scenario = parse_scenario(path.read_bytes(), origin=path.name)
        except (OSError, ScenarioError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        if scenario.name != stem:
            problems.append(f"{path.name}: scenario name {scenario.name!r} is not the file name")
            continue
        if stem in bundled:
            problems.append(f"{path.name}: a bundled scenario has this name")
            continue
        found[stem] = _authored(scenario, path)
    for problem in problems:
        logger.warning("authored scenario skipped: %s", problem)
    return found, problems


def library(settings: Settings) -> dict[str, Scenario]:
    """Every scenario a drill can be started from: the bundled ones, then the authored ones
    (:class:`AuthoredScenario`), each group by name. A broken bundled library raises
    :class:`ScenarioError`; a broken authored file is skipped."""
    merged: dict[str, Scenario] = dict(load_library())
    authored, _ = load_authored(settings)
    for name, scenario in authored.items():
        merged.setdefault(name, scenario)
    return merged


def is_authored(scenario: Scenario) -> bool:
    """Whether a library entry was written on the editor (rather than bundled)."""
    return isinstance(scenario, AuthoredScenario)


def jurisdiction_problems(scenario: Scenario) -> list[str]:
    """Where the injects break the rule of ``data/scenarios/README.md``: each inject lies in
    or within :data:`NEAR_KM` of a jurisdiction of the scenario, and each jurisdiction is
    touched by some inject. Empty when the scenario keeps it."""
    geography = load_geography()
    states = {code: geography.state_geometry(code) for code in scenario.jurisdictions}
    areas = {item.inject_id: item.area for item in scenario.injects}
    problems: list[str] = []
    for item_id, area in areas.items():
        if any(area.intersects(state) for state in states.values()):
            continue
        # offshore: the nearest vertex of the densified outline bounds the distance
        xy = shapely.get_coordinates(shapely.segmentize(area.boundary, 0.05))
        nearest = min(float(np.min(geography.distance_km(xy[:, 0], xy[:, 1], code)))
                      for code in states)
        if nearest > NEAR_KM:
            problems.append(f'inject "{item_id}" lies {nearest:,.0f} km from '
                            f"{', '.join(states)}: draw it in or near the scenario's "
                            "jurisdictions, or add its jurisdiction")
    for code, state in states.items():
        if not any(area.intersects(state) for area in areas.values()):
            problems.append(f"no inject touches {code}: remove it from the jurisdictions or "
                            "draw an inject there")
    return problems


def scenario_bytes(scenario: Scenario) -> bytes:
    """The file the library keeps for ``scenario`` (the canonical GeoJSON, UTF-8)."""
    text = json.dumps(scenario_to_geojson(scenario), ensure_ascii=False, indent=1)
    return (text + "\n").encode("utf-8")


def _write_atomically(path: Path, body: bytes, *, replace: bool) -> None:
    """Write a temp file next to ``path``, then move it into place in one step: replacing
    the file, or (``replace`` false) only if no file of that name appeared meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)  # fails if someone saved the same name meanwhile
            except FileExistsError:
                raise SaveRefused(f"a scenario named {path.stem!r} was saved meanwhile; "
                                  "choose another name") from None
    finally:
        Path(temp).unlink(missing_ok=True)


def save_scenario(settings: Settings, engine: Engine, data: dict[str, Any] | str | bytes, *,
                  actor: str, now: datetime, replace: bool = False) -> SavedScenario:
    """Validate ``data`` (the scenario GeoJSON) and write it to the authored library; audited.

    Refused (:class:`SaveRefused`): a bundled name, an authored name already taken unless
    ``replace`` (the editor passes it when the scenario was opened from that very file), a
    scenario whose injects break :func:`jurisdiction_problems`, a file over
    :data:`MAX_FILE_BYTES`. An invalid scenario raises :class:`ScenarioError`. What is written
    is the canonical form of what was validated: ``load_library`` parses it back equal.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    scenario = parse_scenario(data, origin="scenario")
    if scenario.name in bundled_names():
        raise SaveRefused(f"{scenario.name!r} is the name of a bundled scenario; choose "
                          "another name")
    problems = jurisdiction_problems(scenario)
    if problems:
        raise SaveRefused("; ".join(problems))
    path = authored_dir(settings) / f"{scenario.name}{FILE_SUFFIX}"
    exists = path.is_file()
    if exists and not replace:
        raise SaveRefused(f"a scenario named {scenario.name!r} already exists; open it from "
                          f"/drills/edit/{scenario.name} to change it, or choose another name")
    body = scenario_bytes(scenario)
    if len(body) > MAX_FILE_BYTES:
        raise SaveRefused(f"the scenario is {len(body):,} bytes, more than "
                          f"{MAX_FILE_BYTES:,}: simplify its shapes")
    digest = hashlib.sha256(body).hexdigest()
    detail = {"name": scenario.name, "injects": len(scenario.injects), "sha256": digest,
              "replaced": exists}
    with engine.begin() as connection:
        record_audit(connection, actor, SAVE_ACTION, detail, now)
        _write_atomically(path, body, replace=exists)  # a failed write rolls the audit back
    logger.info("scenario %s saved: %d injects, sha256 %s", scenario.name,
                len(scenario.injects), digest[:12])
    return SavedScenario(scenario=scenario, path=path, sha256=digest, replaced=exists)
