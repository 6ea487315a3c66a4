"""Fuzzing the wildfire perimeters parser (WFIGS GeoJSON pages)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from feeds import FeedError, wildfire
from tests.fuzz.mutations import (
    FUZZ_MARKS,
    FUZZ_SETTINGS,
    NOW,
    Calls,
    check_parse_result,
    expect_only,
    mutated_bytes,
    mutated_tree,
    tree_keys,
)
from tests.fuzz.seeds import decoded, fixture_json, text

pytestmark = FUZZ_MARKS

_PAGES = [fixture_json("wildfire/written_wfigs_perimeters_current_page1.geojson"),
          fixture_json("wildfire/written_wfigs_perimeters_current_page2.geojson")]
SEEDS = [text(page) for page in _PAGES]
KEYS = tree_keys(*_PAGES)


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 4)) == 0:  # byte-level, then decoded like fetch does
        return decoded(draw(mutated_bytes(draw(st.sampled_from(SEEDS)).encode(),
                                          [s.encode() for s in SEEDS])))
    return draw(mutated_tree(SEEDS, keys=KEYS))


def test_wildfire_perimeters_survive_mutation() -> None:
    calls = Calls()

    @FUZZ_SETTINGS
    @given(payload=payloads())
    def fuzz(payload: Any) -> None:
        calls()
        wildfire.exceeded_transfer_limit(payload)
        expect_only((FeedError,), lambda: wildfire.raise_for_arcgis_error(payload))
        result = expect_only((FeedError,), lambda: wildfire.parse_perimeters(payload, now=NOW))
        if result is not None:
            check_parse_result(result, "wildfire")
            ids = [h.hazard_id for h in result.hazards]
            assert len(ids) == len(set(ids)), "one hazard per incident"

    fuzz()
    calls.check()
