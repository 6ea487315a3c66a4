"""Fuzzing the NWS parsers: alerts (with template times and placement) and zone shapes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from feeds import FeedError, nws
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
from tests.fuzz.seeds import fixture_json, text, trimmed_collection

pytestmark = FUZZ_MARKS

_ALERTS = [
    trimmed_collection("nws/weathergov_northwest-alerts_alerts-active.json", first=1,
                       keep=lambda f: f["geometry"] is not None),
    trimmed_collection("nws/weathergov_guam-7day_alerts-active.json", first=1,
                       keep=lambda f: f["geometry"] is not None),
    fixture_json("nws/pynws_alerts_active_zone.json"),
    fixture_json("nws/nws_alerts_api.json"),
]
_ZONES = [fixture_json("nws/zone_forecast_ORZ004.json"),
          fixture_json("nws/zone_county_ORC041.json")]
ALERT_SEEDS = [text(seed) for seed in _ALERTS]
ZONE_SEEDS = [text(seed) for seed in _ZONES]
KEYS = tree_keys(*_ALERTS, *_ZONES)


def _decoded(body: bytes) -> Any:
    """The JSON document of a body as :func:`feeds.nws.fetch` decodes it, or None."""
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


@st.composite
def payloads(draw: st.DrawFn, seeds: list[str]) -> Any:
    if draw(st.integers(0, 4)) == 0:  # byte-level, then decoded like fetch does
        body = draw(mutated_bytes(draw(st.sampled_from(seeds)).encode(),
                                  [s.encode() for s in seeds]))
        return _decoded(body)
    return draw(mutated_tree(seeds, keys=KEYS))


def test_nws_alerts_and_zones_survive_mutation() -> None:
    calls = Calls()

    @FUZZ_SETTINGS
    @given(alerts=payloads(ALERT_SEEDS), zone=payloads(ZONE_SEEDS))
    def fuzz(alerts: Any, zone: Any) -> None:
        calls()
        shape = expect_only((FeedError,), lambda: nws.parse_zone(zone))
        assert shape is None or shape.geom_type in ("Polygon", "MultiPolygon")
        if isinstance(alerts, dict):
            alerts = nws.resolve_template_times(alerts, now=NOW)
        result = expect_only((FeedError,), lambda: nws.parse_alerts(alerts))
        if result is None:
            return
        check_parse_result(result, "nws")
        zones = dict.fromkeys(nws.zones_needed(result.hazards), shape)
        placed = nws.place_alerts(result, zones=zones)
        check_parse_result(placed, "nws")
        assert [h.hazard_id for h in placed.hazards] == [h.hazard_id for h in result.hazards]
        nws.placement_counts(placed.hazards)
        nws.reconcile(placed.hazards, now=NOW)

    fuzz()
    calls.check()
