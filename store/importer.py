"""Roster import as one operation: read files, check every row, store all-or-nothing."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from layers.gazetteer import load_gazetteer
from layers.geography import load_geography
from layers.locations import (
    RawTable,
    RosterCheck,
    RosterValidationError,
    check_roster,
    frame_to_raw,
    read_table,
)
from settings import Settings
from store.roster import replace_roster

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What an import did: the check, and the stored import id (None when nothing was stored)."""

    check: RosterCheck
    import_id: int | None


def check_files(
    settings: Settings, missions_path: str | Path, people_path: str | Path
) -> RosterCheck:
    """Read and check a roster without storing it (``roster validate``)."""
    missions = read_table(missions_path, "missions")
    return _check(settings, missions, read_table(people_path, "people"))


def _check(settings: Settings, missions: RawTable, people: RawTable) -> RosterCheck:
    online = None
    if settings.online_geocoding:
        from layers.census_geocoder import CensusGeocoder

        online = CensusGeocoder(settings.census_geocoder_url).geocode
    return check_roster(
        missions, people, geography=load_geography(), gazetteer=load_gazetteer(),
        h3_resolution=settings.h3_resolution, tolerance_km=settings.jurisdiction_tolerance_km,
        online_geocoder=online,
    )


def import_files(
    engine: Engine,
    settings: Settings,
    missions_path: str | Path,
    people_path: str | Path,
    *,
    actor: str,
    now: datetime,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a user's roster. With any bad row and not ``skip_invalid``, nothing is stored."""
    missions = read_table(missions_path, "missions")
    people = read_table(people_path, "people")
    source = f"{Path(missions_path).name} + {Path(people_path).name}"
    return _store(engine, settings, missions, people, source=source, actor=actor, now=now,
                  skip_invalid=skip_invalid, synthetic=False, progress=progress)


def store_demo_roster(
    engine: Engine, settings: Settings, *, actor: str, now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Generate the synthetic demo roster and store it through the same checks as an import."""
    from layers.demo import generate_demo_roster

    if progress:
        progress("generating", 0, 1)
    missions, people = generate_demo_roster(settings.demo_seed)
    return _store(
        engine, settings, frame_to_raw(missions, "missions", "demo"),
        frame_to_raw(people, "people", "demo"), source=f"demo roster (seed {settings.demo_seed})",
        actor=actor, now=now, skip_invalid=False, synthetic=True, progress=progress,
    )


def _store(
    engine: Engine, settings: Settings, missions: RawTable, people: RawTable, *, source: str,
    actor: str, now: datetime, skip_invalid: bool, synthetic: bool, progress: Progress | None,
) -> ImportReport:
    if progress:
        progress("checking", 0, len(missions.frame) + len(people.frame))
    check = _check(settings, missions, people)
    if check.problems and not skip_invalid:
        raise RosterValidationError(check.problems)
    import_id = replace_roster(
        engine, check.missions, check.people, source=source, actor=actor, now=now,
        synthetic=synthetic, skipped_rows=check.bad_rows, progress=progress,
    )
    return ImportReport(check, import_id)
