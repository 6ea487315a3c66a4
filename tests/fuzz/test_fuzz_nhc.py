"""Fuzzing the NHC parsers: CurrentStorms.json, the GIS layers as GeoJSON, and the GIS zip."""

from __future__ import annotations

import copy
import io
import zipfile
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feeds import FeedError, nhc
from tests.fuzz.mutations import (
    FUZZ_MARKS,
    FUZZ_SETTINGS,
    HOSTILE_STRINGS,
    NOW,
    Calls,
    check_parse_result,
    expect_only,
    mutated_bytes,
    mutated_tree,
    tree_keys,
)
from tests.fuzz.seeds import fixture_bytes, fixture_json, text

pytestmark = FUZZ_MARKS


def _storms() -> list[dict[str, Any]]:
    recorded = fixture_json("nhc/aguayluz_nhc_current_storms.json")
    sandy = copy.deepcopy(recorded["activeStorms"][0])
    sandy.update(id="al182012", name="Sandy", classification="HU", intensity="100",
                 latitudeNumeric=None, latitude="29.4N", longitude="76.9W",
                 longitudeNumeric=None, windWatchesWarnings={"zipFile": "https://x/ww.zip"})
    return [recorded, {"activeStorms": [sandy, recorded["activeStorms"][0]]}]


def _thinned(name: str) -> dict[str, Any]:
    """A GeoJSON layer whose rings keep every fourth vertex (and stay closed)."""
    data = fixture_json(name)
    for feature in data["features"]:
        geometry = feature["geometry"]
        if geometry and geometry["type"] == "Polygon":
            geometry["coordinates"] = [ring[:-1:4] + ring[-1:] if len(ring) > 20 else ring
                                       for ring in geometry["coordinates"]]
    return data


PREFIX = "nhc/mapbox-sandy_al182012.017A_"
_LAYERS = {"cone": _thinned(PREFIX + "5day_pgn.json"), "track": _thinned(PREFIX + "5day_lin.json"),
           "points": _thinned(PREFIX + "5day_ptn.json"),
           "warnings": _thinned(PREFIX + "ww_wwlin.json")}
LAYER_SEEDS = {kind: [text(layer)] for kind, layer in _LAYERS.items()}
STORM_SEEDS = [text(s) for s in _storms()]
KEYS = tree_keys(*_LAYERS.values(), *_storms())

ZIP = fixture_bytes("nhc/mapbox-sandy_al182012_5day_latest.zip")
with zipfile.ZipFile(io.BytesIO(ZIP)) as _zip:
    MEMBERS = {name: _zip.read(name) for name in _zip.namelist()
               if not name.endswith(".xml")}
ZIP_LAYERS = sorted({name.rsplit(".", 1)[0] for name in MEMBERS})
PRJ_TEXTS = ('PROJCS["Mercator",GEOGCS["WGS 84"],PROJECTION["Mercator"]]', "garbage",
             "", 'GEOGCS["GCS_Sphere",DATUM["D_Sphere",SPHEROID["S",1,0]]]')


@st.composite
def storms_payloads(draw: st.DrawFn) -> Any:
    return draw(mutated_tree(STORM_SEEDS, keys=KEYS))


@st.composite
def gis_layers(draw: st.DrawFn) -> dict[str, Any]:
    """Each layer absent, as recorded, or mutated; at least one present."""
    layers: dict[str, Any] = {}
    for kind, seeds in LAYER_SEEDS.items():
        how = draw(st.integers(0, 3))
        if how == 1:
            layers[kind] = draw(mutated_tree(seeds, max_ops=0))
        elif how >= 2:
            layers[kind] = draw(mutated_tree(seeds, max_ops=4, keys=KEYS))
    return layers or {"cone": draw(mutated_tree(LAYER_SEEDS["cone"], keys=KEYS))}


@st.composite
def gis_zips(draw: st.DrawFn) -> bytes:
    """A zip of one or two recorded layers whose members are dropped, renamed or mutated."""
    chosen = draw(st.lists(st.sampled_from(ZIP_LAYERS), min_size=1, max_size=2, unique=True))
    members = {name: data for name, data in MEMBERS.items()
               if name.rsplit(".", 1)[0] in chosen}
    for _ in range(draw(st.integers(0, 3))):
        names = sorted(members)
        if not names:
            break
        name = draw(st.sampled_from(names))
        op = draw(st.integers(0, 5))
        if op == 0:
            del members[name]
        elif op == 1:  # another storm, another layer kind, or no storm id
            stem, ext = name.rsplit(".", 1)
            new_stem = draw(st.sampled_from((
                stem.replace("al182012", "ep072026"), stem.replace("al182012", "xx"),
                stem.replace("5day_pgn", "5day_pts"), stem.upper(), "x_ww_wwlin")))
            members[f"{new_stem}.{ext}"] = members.pop(name)
        elif op == 2 and name.endswith(".prj"):
            members[name] = draw(st.sampled_from(PRJ_TEXTS + HOSTILE_STRINGS[:8])).encode()
        else:
            members[name] = draw(mutated_bytes(members[name], list(MEMBERS.values())[:4]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    data = out.getvalue()
    if draw(st.integers(0, 9)) == 0:
        data = draw(mutated_bytes(data, [ZIP]))
    return data


def test_nhc_current_storms_and_gis_geojson_survive_mutation() -> None:
    calls = Calls()

    @FUZZ_SETTINGS
    @given(storms=storms_payloads(), layers=gis_layers())
    def fuzz(storms: Any, layers: dict[str, Any]) -> None:
        calls()
        gis = expect_only((FeedError,), lambda: nhc.read_gis_geojson(**layers))
        result = expect_only((FeedError,), lambda: nhc.parse_gis_geojson(now=NOW, **layers))
        if result is not None:
            check_parse_result(result, "nhc")
        products = {"al182012": gis} if gis is not None else {}
        result = expect_only((FeedError,), lambda: nhc.parse_current_storms(
            storms, now=NOW, gis=products))
        if result is not None:
            check_parse_result(result, "nhc")

    fuzz()
    calls.check()


# GDAL reports a damaged .dbf number ("parsed incompletely") as a RuntimeWarning through pyogrio,
# and pyogrio's error handler can fail to decode GDAL's message about damaged bytes (an
# "exception ignored" inside pyogrio): diagnostics of the library, not failures of the parser.
@pytest.mark.filterwarnings("ignore::RuntimeWarning:pyogrio")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_nhc_gis_zip_survives_mutation() -> None:
    calls = Calls()

    @FUZZ_SETTINGS
    @given(data=gis_zips())
    def fuzz(data: bytes) -> None:
        calls()
        result = expect_only((FeedError,), lambda: nhc.parse_gis_zip(data, now=NOW))
        if result is not None:
            check_parse_result(result, "nhc")

    fuzz()
    calls.check()
