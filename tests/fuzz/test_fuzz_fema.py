"""Fuzzing the OpenFEMA declarations parser."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from feeds import FeedError, fema
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
from tests.fuzz.seeds import decoded, text, trimmed_collection

pytestmark = FUZZ_MARKS

_PAGE = trimmed_collection("fema/openFemaNgClient_DisasterDeclarationsSummariesV2.json",
                           first=3, list_key=fema.ENTITY,
                           keep=lambda row: row["state"] == "PR"
                           or row["designatedArea"] == "Statewide")
SEEDS = [text(_PAGE)]
KEYS = tree_keys(_PAGE)


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 4)) == 0:  # byte-level, then decoded like fetch does
        return decoded(draw(mutated_bytes(SEEDS[0].encode())))
    return draw(mutated_tree(SEEDS, keys=KEYS))


def test_fema_declarations_survive_mutation() -> None:
    calls = Calls()

    @FUZZ_SETTINGS
    @given(payload=payloads())
    def fuzz(payload: Any) -> None:
        calls()
        fema.total_count(payload)
        result = expect_only((FeedError,), lambda: fema.parse_declarations(payload, now=NOW))
        if result is not None:
            check_parse_result(result, "fema")
            ids = [h.hazard_id for h in result.hazards]
            assert len(ids) == len(set(ids)), "one hazard per declaration"

    fuzz()
    calls.check()
