"""Fuzzing the USGS parsers: summary feed, event detail and ShakeMap intensity contours."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from feeds import FeedError, usgs
from tests.fuzz.mutations import (
    FUZZ_MARKS,
    FUZZ_SETTINGS,
    NOW,
    Calls,
    check_parse_result,
    dumps,
    expect_only,
    mutated_bytes,
    mutated_tree,
    tree_keys,
)
from tests.fuzz.seeds import fixture_json, text, trimmed_collection

pytestmark = FUZZ_MARKS


def _detail(name: str) -> dict[str, Any]:
    """An event detail with only its preferred ShakeMap's contour links left in products."""
    data = fixture_json(name)
    shakemap = data["properties"]["products"]["shakemap"][0]
    contents = {k: v for k, v in shakemap["contents"].items()
                if k in ("download/cont_mi.json", "download/cont_mmi.json")}
    data["properties"]["products"] = {"shakemap": [{**shakemap, "contents": contents,
                                                    "properties": {}}]}
    return data


def _contours() -> dict[str, Any]:
    """Five levels (MMI 5 to 7) of the recorded contours, every other vertex (ends kept)."""
    data = fixture_json("usgs/isival_iscgem882673_cont_mmi.json")
    data["features"] = data["features"][4:9]
    for feature in data["features"]:
        feature["geometry"]["coordinates"] = [
            part[:-1:2] + part[-1:] if len(part) > 8 else part
            for part in feature["geometry"]["coordinates"]]
    return data


_SUMMARIES = [
    trimmed_collection("usgs/naseemao_significant_month.geojson", first=3),
    trimmed_collection("usgs/abruzzi_all_day_2014.geojson", first=2,
                       keep=lambda f: f["properties"]["type"] != "earthquake"),
]
_DETAILS = [_detail("usgs/eventpages_nn00536452_detail.geojson"),
            _detail("usgs/eventpages_us1000chhc_detail.geojson")]
_CONTOURS = [_contours()]
SUMMARY_SEEDS = [text(s) for s in _SUMMARIES]
DETAIL_SEEDS = [text(s) for s in _DETAILS]
CONTOUR_SEEDS = [text(s) for s in _CONTOURS]
KEYS = tree_keys(*_SUMMARIES, *_DETAILS, *_CONTOURS)


@st.composite
def payloads(draw: st.DrawFn, seeds: list[str]) -> bytes | dict[str, Any] | Any:
    """Bytes (byte-level or structure-aware mutation) or, sometimes, the mutated dict itself."""
    way = draw(st.integers(0, 5))
    if way == 0:
        return draw(mutated_bytes(draw(st.sampled_from(seeds)).encode(),
                                  [s.encode() for s in seeds]))
    tree = draw(mutated_tree(seeds, keys=KEYS))
    return tree if way == 1 and isinstance(tree, dict) else dumps(tree)


def test_usgs_summary_detail_and_contours_survive_mutation() -> None:
    calls = Calls()

    @FUZZ_SETTINGS
    @given(summary=payloads(SUMMARY_SEEDS), detail=payloads(DETAIL_SEEDS),
           contours=payloads(CONTOUR_SEEDS))
    def fuzz(summary: Any, detail: Any, contours: Any) -> None:
        calls()
        url = expect_only((FeedError,), lambda: usgs.contours_url(detail))
        assert url is None or url.startswith(("http://", "https://"))
        result = expect_only((FeedError,), lambda: usgs.parse_detail(detail, now=NOW))
        if result is not None:
            check_parse_result(result, "usgs")
            assert len(result.hazards) + result.skipped == 1
        area = expect_only((FeedError,), lambda: usgs.shakemap_area(
            contours, epicentre=(-110.891, 44.63)))
        result = expect_only((FeedError,), lambda: usgs.parse_summary(summary, now=NOW))
        if result is None:
            return
        check_parse_result(result, "usgs")
        if area is not None and result.hazards:
            first = result.hazards[0].hazard_id.removeprefix("usgs:")
            with_area = usgs.parse_summary(summary, now=NOW, areas={first: area})
            check_parse_result(with_area, "usgs")
            assert with_area.hazards[0].geometry_method == "contours"

    fuzz()
    calls.check()
