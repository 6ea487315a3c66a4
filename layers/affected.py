"""Who and what the hazards affect, counted fast and filtered, from the impact engine's pairs.

Pure functions over numpy arrays and pandas frames (no store, no dash), so the dashboard's
numbers can be checked against a plain loop in tests.

* :class:`PairCodes` — the impact pairs of :meth:`layers.impact.ImpactIndex.affected` as two
  integer arrays: row of the hazard table, row of the locations table
  (:func:`layers.locations.roster_locations`).
* :class:`Filters` — what a coordinator narrows the view to: hazard category, severity and
  source; location jurisdiction, OFM office and sending country.
* :func:`hazard_counts` — per hazard: missions affected (premises or people), mission premises
  inside, people, people with immunity, households.
* :func:`union_counts` — the same across several hazards, each mission and person once.

A mission counts as affected when its premises or any of its people's residences are inside a
hazard; that is the unit of outreach (one duty contact per mission).

Errors: bad arguments raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

IMMUNE_LEVELS: tuple[str, ...] = ("full", "official_acts")
COUNT_COLUMNS: tuple[str, ...] = ("missions", "premises", "people", "with_immunity",
                                  "households")
_LOCATION_NEEDS = ("location_id", "kind", "mission_id", "country_code", "ofm_office",
                   "jurisdiction", "immunity", "household_id")


def _tuple(values: Iterable[str] | str | None, name: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    out = tuple(str(v) for v in values if v is not None and str(v) != "")
    for value in out:
        if len(value) > 64:
            raise ValueError(f"{name} values must be short codes, got {value[:70]!r}")
    return out


@dataclasses.dataclass(frozen=True)
class Filters:
    """A view's filters; an empty tuple means "any". Values are codes, not labels."""

    categories: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    offices: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()    # ISO country codes of the sending state

    @classmethod
    def of(cls, **values: Iterable[str] | str | None) -> Filters:
        """Filters from lists (None and "" ignored); unknown names are a ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown filter(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(names))}")
        return cls(**{k: _tuple(v, k) for k, v in values.items()})

    @property
    def by_location(self) -> bool:
        return bool(self.jurisdictions or self.offices or self.countries)

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in dataclasses.fields(self))

    def hazard_mask(self, hazards: pd.DataFrame) -> np.ndarray:
        """Which hazard rows pass the category, severity and source filters."""
        mask = np.ones(len(hazards), dtype=bool)
        for column, wanted in (("category", self.categories), ("severity", self.severities),
                               ("source", self.sources)):
            if wanted:
                mask &= hazards[column].isin(wanted).to_numpy()
        return mask

    def location_mask(self, locations: pd.DataFrame) -> np.ndarray | None:
        """Which locations pass the jurisdiction, office and country filters; None: all."""
        if not self.by_location:
            return None
        mask = np.ones(len(locations), dtype=bool)
        for column, wanted in (("jurisdiction", self.jurisdictions),
                               ("ofm_office", self.offices), ("country_code", self.countries)):
            if wanted:
                mask &= locations[column].isin(wanted).to_numpy()
        return mask


@dataclasses.dataclass(frozen=True)
class LocationCodes:
    """Integer codes of the locations table, for counting without string work."""

    is_mission: np.ndarray      # bool
    is_person: np.ndarray       # bool
    immune: np.ndarray          # bool: a person with full or official-acts immunity
    mission: np.ndarray         # int: code of the location's mission
    household: np.ndarray       # int: code of the person's household (-1 for missions)
    n_missions: int
    n_households: int

    @classmethod
    def of(cls, locations: pd.DataFrame) -> LocationCodes:
        missing = [c for c in _LOCATION_NEEDS if c not in locations.columns]
        if missing:
            raise ValueError(f"locations is missing column(s) {', '.join(missing)}")
        kind = locations["kind"].to_numpy()
        mission_codes, missions = pd.factorize(locations["mission_id"])
        is_person = kind == "person"
        household = np.full(len(locations), -1, dtype=np.int64)
        households = locations["household_id"].where(is_person)
        codes, uniques = pd.factorize(households)
        household[is_person] = codes[is_person]
        return cls(
            is_mission=kind == "mission", is_person=is_person,
            immune=(is_person & locations["immunity"].isin(IMMUNE_LEVELS).to_numpy()),
            mission=mission_codes.astype(np.int64), household=household,
            n_missions=len(missions), n_households=len(uniques),
        )


@dataclasses.dataclass(frozen=True)
class PairCodes:
    """Impact pairs as row numbers: ``hazard[i]`` covers ``location[i]``."""

    hazard: np.ndarray
    location: np.ndarray

    @classmethod
    def of(cls, pairs: pd.DataFrame, hazard_ids: Sequence[str] | pd.Index,
           location_ids: Sequence[str] | pd.Index) -> PairCodes:
        """Row numbers of ``pairs``' ids in ``hazard_ids`` and ``location_ids``.

        Every id in the pairs must be known: an unknown id is a ValueError (it would mean the
        pairs and the tables come from different snapshots).
        """
        hazards = pd.Index(hazard_ids)
        locations = pd.Index(location_ids)
        if not hazards.is_unique or not locations.is_unique:
            raise ValueError("hazard_ids and location_ids must be unique")
        columns = {}
        for column, index in (("hazard_id", hazards), ("location_id", locations)):
            values = pairs[column]
            if isinstance(values.dtype, pd.CategoricalDtype):
                lookup = index.get_indexer(values.cat.categories)
                codes = values.cat.codes.to_numpy()
                rows = np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1)
            else:
                rows = index.get_indexer(values.astype(str))
            if (rows < 0).any():
                bad = values[rows < 0].astype(str).unique()[:3]
                raise ValueError(f"pairs has {column} not in the tables: {', '.join(bad)}")
            columns[column] = rows.astype(np.int64)
        return cls(columns["hazard_id"], columns["location_id"])

    @classmethod
    def empty(cls) -> PairCodes:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.hazard)

    def select(self, hazard_mask: np.ndarray | None = None,
               location_mask: np.ndarray | None = None) -> PairCodes:
        """The pairs whose hazard and location pass the masks (None: all)."""
        keep = np.ones(len(self), dtype=bool)
        if hazard_mask is not None:
            keep &= hazard_mask[self.hazard]
        if location_mask is not None:
            keep &= location_mask[self.location]
        return PairCodes(self.hazard[keep], self.location[keep])


def _distinct_per_hazard(hazard: np.ndarray, thing: np.ndarray, n_things: int,
                         n_hazards: int) -> np.ndarray:
    if not len(hazard):
        return np.zeros(n_hazards, dtype=np.int64)
    keys = np.unique(hazard * np.int64(max(n_things, 1)) + thing)
    return np.bincount(keys // max(n_things, 1), minlength=n_hazards)


def hazard_counts(pairs: PairCodes, codes: LocationCodes, n_hazards: int,
                  location_mask: np.ndarray | None = None) -> pd.DataFrame:
    """Per hazard row: missions (premises or people inside), premises, people, with_immunity,
    households — counting only locations that pass ``location_mask``."""
    if n_hazards < 0:
        raise ValueError(f"n_hazards must be >= 0, got {n_hazards}")
    chosen = pairs.select(location_mask=location_mask)
    h, loc = chosen.hazard, chosen.location
    person = codes.is_person[loc]
    out = {
        "missions": _distinct_per_hazard(h, codes.mission[loc], codes.n_missions, n_hazards),
        "premises": np.bincount(h[codes.is_mission[loc]], minlength=n_hazards),
        "people": np.bincount(h[person], minlength=n_hazards),
        "with_immunity": np.bincount(h[codes.immune[loc]], minlength=n_hazards),
        "households": _distinct_per_hazard(h[person], codes.household[loc][person],
                                           codes.n_households, n_hazards),
    }
    return pd.DataFrame({k: v.astype(np.int64) for k, v in out.items()})


def union_counts(pairs: PairCodes, codes: LocationCodes, hazard_mask: np.ndarray | None = None,
                 location_mask: np.ndarray | None = None) -> dict[str, int]:
    """Across the hazards in ``hazard_mask``: each mission, person and household once."""
    chosen = pairs.select(hazard_mask, location_mask)
    loc = np.unique(chosen.location)
    person = loc[codes.is_person[loc]]
    return {
        "missions": len(np.unique(codes.mission[loc])),
        "premises": int(codes.is_mission[loc].sum()),
        "people": len(person),
        "with_immunity": int(codes.immune[person].sum()),
        "households": len(np.unique(codes.household[person])),
    }


def affected_locations(pairs: PairCodes, hazard_mask: np.ndarray) -> np.ndarray:
    """Sorted distinct location rows covered by the hazards in ``hazard_mask``."""
    return np.unique(pairs.select(hazard_mask).location)


def options(values: Any) -> list[str]:
    """Sorted distinct non-empty values, for filter drop-downs."""
    series = pd.Series(values, dtype=object).dropna().astype(str)
    return sorted(set(series[series != ""]))
