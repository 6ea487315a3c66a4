"""Counting who the hazards affect: numpy counts against plain Python loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layers.affected import (
    Filters,
    LocationCodes,
    PairCodes,
    affected_locations,
    hazard_counts,
    union_counts,
)


def _locations(n_missions: int, n_people: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    missions = pd.DataFrame({
        "location_id": [f"M:M{i}" for i in range(n_missions)], "kind": "mission",
        "mission_id": [f"M{i}" for i in range(n_missions)],
        "country_code": rng.choice(["JPN", "FRA", "KEN"], n_missions),
        "ofm_office": rng.choice(["WAS", "NYC", "MIA"], n_missions),
        "jurisdiction": rng.choice(["DC", "NY", "FL", "GU"], n_missions),
        "immunity": None, "household_id": None,
    })
    owner = rng.integers(0, n_missions, n_people)
    people = pd.DataFrame({
        "location_id": [f"P:P{i}" for i in range(n_people)], "kind": "person",
        "mission_id": [f"M{m}" for m in owner],
        "country_code": missions["country_code"].to_numpy()[owner],
        "ofm_office": missions["ofm_office"].to_numpy()[owner],
        "jurisdiction": rng.choice(["DC", "NY", "FL", "GU"], n_people),
        "immunity": rng.choice(["full", "official_acts", "none"], n_people),
        "household_id": [f"H{h}" for h in rng.integers(0, max(1, n_people // 2), n_people)],
    })
    return pd.concat([missions, people], ignore_index=True)


def _pairs(locations: pd.DataFrame, n_hazards: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    n = len(locations) * 2
    frame = pd.DataFrame({
        "hazard_id": [f"h{i}" for i in rng.integers(0, n_hazards, n)],
        "location_id": locations["location_id"].to_numpy()[rng.integers(0, len(locations), n)],
    }).drop_duplicates()
    # the impact engine answers with Categoricals: count through them the same way
    return frame.astype({"hazard_id": "category", "location_id": "category"})


def _plain_counts(locations: pd.DataFrame, pairs: pd.DataFrame, hazard: str,
                  keep: pd.Series | None = None) -> dict[str, int]:
    rows = locations.set_index("location_id")
    hit = [loc for h, loc in zip(pairs["hazard_id"], pairs["location_id"], strict=True)
           if h == hazard]
    if keep is not None:
        allowed = set(locations.loc[keep, "location_id"])
        hit = [loc for loc in hit if loc in allowed]
    people = [loc for loc in hit if rows.loc[loc, "kind"] == "person"]
    return {
        "missions": len({rows.loc[loc, "mission_id"] for loc in hit}),
        "premises": sum(rows.loc[loc, "kind"] == "mission" for loc in hit),
        "people": len(people),
        "with_immunity": sum(rows.loc[p, "immunity"] in ("full", "official_acts")
                             for p in people),
        "households": len({rows.loc[p, "household_id"] for p in people}),
    }


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_missions=st.integers(1, 12),
       n_people=st.integers(0, 60), n_hazards=st.integers(1, 5))
def test_hazard_counts_match_a_plain_loop(seed, n_missions, n_people, n_hazards) -> None:
    locations = _locations(n_missions, n_people, seed)
    pairs = _pairs(locations, n_hazards, seed)
    hazard_ids = [f"h{i}" for i in range(n_hazards)]
    codes = LocationCodes.of(locations)
    pair_codes = PairCodes.of(pairs, hazard_ids, locations["location_id"])
    counts = hazard_counts(pair_codes, codes, n_hazards)
    filters = Filters.of(jurisdictions=["FL", "GU"], countries=["JPN", "KEN"])
    mask = filters.location_mask(locations)
    narrowed = hazard_counts(pair_codes, codes, n_hazards, mask)
    for i, hazard in enumerate(hazard_ids):
        assert counts.iloc[i].to_dict() == _plain_counts(locations, pairs, hazard)
        assert narrowed.iloc[i].to_dict() == _plain_counts(locations, pairs, hazard,
                                                           pd.Series(mask))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), chosen=st.sets(st.integers(0, 3), min_size=1))
def test_union_counts_each_mission_and_person_once(seed, chosen) -> None:
    locations = _locations(8, 50, seed)
    pairs = _pairs(locations, 4, seed)
    codes = LocationCodes.of(locations)
    pair_codes = PairCodes.of(pairs, [f"h{i}" for i in range(4)], locations["location_id"])
    mask = np.array([i in chosen for i in range(4)])
    union = union_counts(pair_codes, codes, mask)
    names = {f"h{i}" for i in chosen}
    hit = set(pairs.loc[pairs["hazard_id"].astype(str).isin(names), "location_id"].astype(str))
    rows = locations.set_index("location_id").loc[sorted(hit)]
    people = rows[rows["kind"] == "person"]
    assert union == {
        "missions": rows["mission_id"].nunique(),
        "premises": int((rows["kind"] == "mission").sum()),
        "people": len(people),
        "with_immunity": int(people["immunity"].isin(["full", "official_acts"]).sum()),
        "households": people["household_id"].nunique(),
    }
    assert len(affected_locations(pair_codes, mask)) == len(hit)


def test_hazard_mask_and_filters() -> None:
    hazards = pd.DataFrame({"category": ["flood", "weather", "earthquake"],
                            "severity": ["severe", "minor", "extreme"],
                            "source": ["nws", "nws", "usgs"]})
    assert Filters().hazard_mask(hazards).all()
    assert Filters().location_mask(pd.DataFrame()) is None
    assert list(Filters.of(severities=["severe", "extreme"]).hazard_mask(hazards)) == [
        True, False, True]
    assert list(Filters.of(sources="nws", categories=["weather"]).hazard_mask(hazards)) == [
        False, True, False]
    assert Filters.of(countries=["JPN", "", None]).countries == ("JPN",)
    with pytest.raises(ValueError, match="unknown filter"):
        Filters.of(colour=["red"])


def test_pairs_naming_unknown_ids_are_refused() -> None:
    locations = _locations(2, 3, 1)
    pairs = pd.DataFrame({"hazard_id": ["h0"], "location_id": ["P:nobody"]})
    with pytest.raises(ValueError, match="location_id not in the tables"):
        PairCodes.of(pairs, ["h0"], locations["location_id"])
    with pytest.raises(ValueError, match="hazard_id not in the tables"):
        PairCodes.of(pairs.assign(location_id="M:M0"), ["other"], locations["location_id"])


def test_no_pairs_count_zero() -> None:
    locations = _locations(3, 5, 2)
    codes = LocationCodes.of(locations)
    counts = hazard_counts(PairCodes.empty(), codes, 2)
    assert counts.to_numpy().sum() == 0 and len(counts) == 2
    assert union_counts(PairCodes.empty(), codes) == dict.fromkeys(
        ("missions", "premises", "people", "with_immunity", "households"), 0)
