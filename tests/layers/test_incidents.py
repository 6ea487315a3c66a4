"""Incident rules: each default rule on real-ish rows, first match wins, no match is an
incident with its reason, validation names the field, and the recorded feeds classified."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from feeds import gdacs, nws
from feeds.model import Hazard
from layers.incidents import (
    DECISION_COLUMNS,
    DEFAULT_RULES,
    HAZARD_COLUMNS,
    NO_RULE,
    NO_RULE_REASON,
    IncidentRule,
    RulesInvalid,
    classify,
    hazards_frame,
    marine_only,
    rules_from_json,
    rules_to_json,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def row(hazard_id: str, source: str, category: str, event: str, severity: str, *,
        status: str = "actual", marine: bool = False) -> dict[str, object]:
    return {"hazard_id": hazard_id, "source": source, "category": category, "event": event,
            "severity": severity, "status": status, "marine_only": marine}


# Rows as the feeds produce them (events, categories and severities taken from the recorded
# payloads), each with the default rule expected to decide it (None: no rule, an incident).
CASES = [
    (row("nws:urn:oid:1", "nws", "weather", "Tornado Warning", "extreme", status="test"), 0),
    (row("nws:urn:oid:2", "nws", "weather", "Required Weekly Test", "unknown",
         status="system"), 0),
    (row("tsunami:PAAQ-1", "tsunami", "tsunami", "Tsunami Warning", "extreme",
         status="draft"), 0),
    (row("nws:urn:oid:3", "nws", "weather", "Gale Warning", "moderate", marine=True), 1),
    (row("nws:urn:oid:4", "nws", "weather", "Storm Warning", "severe", marine=True), 1),
    (row("gdacs:DR-1012649-33", "gdacs", "other", "Drought: Central America-2019",
         "severe"), 2),
    (row("gdacs:DR-1013682-1", "gdacs", "other", "Drought: Turkey-2019", "minor"), 2),
    (row("nws:urn:oid:5", "nws", "weather", "Brisk Wind Advisory", "minor"), 3),
    (row("usgs:ak023ctna5d5", "usgs", "earthquake", "M 4.2 - 4 km NNW of Anchorage, Alaska",
         "minor"), 3),
    (row("gdacs:EQ-1199929-1287798", "gdacs", "earthquake", "Earthquake M 5.5: South Africa",
         "minor"), 3),
    (row("tsunami:PAAQ-1-rfwv11", "tsunami", "tsunami", "Tsunami Information", "minor"), 3),
    (row("nws:urn:oid:6", "nws", "flood", "Flood Warning", "severe"), None),
    (row("nws:urn:oid:7", "nws", "other", "Air Quality Alert", "unknown"), None),
    (row("nws:urn:oid:8", "nws", "weather", "Winter Storm Warning", "severe",
         status="exercise"), None),
    (row("nhc:al182012:cone", "nhc", "tropical_cyclone", "Hurricane Sandy", "severe"), None),
    (row("gdacs:TC-1000641-29", "gdacs", "tropical_cyclone", "Tropical cyclone: PHANFONE-19",
         "severe"), None),
    (row("usgs:us6000len8", "usgs", "earthquake", "M 6.3 - western Afghanistan", "extreme"),
     None),
    (row("fema:DR-4673", "fema", "declaration", "Major Disaster Declaration", "severe"), None),
    (row("wildfire:abc", "wildfire", "fire", "Wildfire", "unknown"), None),
]


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(HAZARD_COLUMNS))


@pytest.mark.parametrize("case, expected", CASES, ids=[str(c[0]["hazard_id"]) for c in CASES])
def test_each_default_rule_decides_its_hazards(case, expected) -> None:
    decision = classify(frame([case]), DEFAULT_RULES).iloc[0]
    if expected is None:
        assert decision["incident"]
        assert decision["rule"] == NO_RULE
        assert decision["reason"] == NO_RULE_REASON
    else:
        assert not decision["incident"]
        assert decision["rule"] == expected
        assert decision["reason"] == DEFAULT_RULES[expected].note


def test_defaults_leave_exercises_and_unknown_severity_alone() -> None:
    for rule in DEFAULT_RULES:
        assert "exercise" not in rule.statuses and "actual" not in rule.statuses
        assert "unknown" not in rule.severities
        assert rule.note


def test_classify_is_indexed_like_its_input_and_typed() -> None:
    hazards = frame([c for c, _ in CASES])
    hazards.index = pd.Index([f"h{i}" for i in range(len(hazards))])
    out = classify(hazards, DEFAULT_RULES)
    assert list(out.columns) == list(DECISION_COLUMNS)
    assert out.index.equals(hazards.index)
    assert out["incident"].dtype == bool
    assert out["rule"].dtype == "int64"
    assert out["reason"].map(type).eq(str).all()
    assert classify(hazards.iloc[:0], DEFAULT_RULES).empty


def test_first_match_wins_and_include_can_rescue() -> None:
    gale = row("nws:urn:oid:3", "nws", "weather", "Gale Warning", "moderate", marine=True)
    small_craft = row("nws:urn:oid:9", "nws", "weather", "small craft advisory", "minor",
                      marine=True)
    keep = IncidentRule("include", events=("Gale Warning",), note="Gales matter to us.")
    out = classify(frame([gale, small_craft]), (keep, *DEFAULT_RULES))
    assert out["incident"].tolist() == [True, False]
    assert out["rule"].tolist() == [0, 2]
    assert out["reason"].tolist() == ["Gales matter to us.", DEFAULT_RULES[1].note]
    # the same include after the marine rule never gets a say
    out = classify(frame([gale]), (*DEFAULT_RULES, keep))
    assert out["rule"].tolist() == [1]


def test_no_rules_make_everything_an_incident() -> None:
    out = classify(frame([c for c, _ in CASES]), ())
    assert out["incident"].all() and (out["rule"] == NO_RULE).all()
    assert (out["reason"] == NO_RULE_REASON).all()


def test_events_match_any_case_whole_names_or_the_type_of_a_label() -> None:
    rule = IncidentRule("exclude", events=("small craft ADVISORY", "drought"), note="n")
    rows = [row("nws:1", "nws", "weather", "Small Craft Advisory", "minor"),
            row("nws:2", "nws", "weather", "Small Craft Advisory for Hazardous Seas", "minor"),
            row("gdacs:DR-1-1", "gdacs", "other", "Drought: Turkey-2019", "minor"),
            row("gdacs:FL-1-1", "gdacs", "flood", "Flood: Drought relief area", "minor")]
    assert classify(frame(rows), (rule,))["incident"].tolist() == [False, True, False, True]


def test_every_criterion_narrows_the_match() -> None:
    base = row("usgs:x", "usgs", "earthquake", "M 5.0 - somewhere", "moderate")
    rules = [
        IncidentRule("exclude", sources=("nws",), note="n"),
        IncidentRule("exclude", categories=("flood",), note="n"),
        IncidentRule("exclude", severities=("severe", "extreme"), note="n"),
        IncidentRule("exclude", statuses=("test",), note="n"),
        IncidentRule("exclude", events=("M 5.1 - somewhere",), note="n"),
        IncidentRule("exclude", marine_only=True, note="n"),
        IncidentRule("exclude", sources=("usgs",), categories=("earthquake",),
                     severities=("moderate",), statuses=("actual",), marine_only=False,
                     note="all of them"),
    ]
    out = classify(frame([base]), rules)
    assert out["rule"].tolist() == [6] and out["reason"].tolist() == ["all of them"]


@pytest.mark.parametrize("field, value, message", [
    ("action", "drop", "action must be one of include, exclude"),
    ("sources", ("nws", "twitter"), "sources must be chosen from nws, usgs"),
    ("categories", ("storm",), "categories must be chosen from weather"),
    ("severities", ("tiny",), "severities must be chosen from extreme, severe, moderate, "
                              "minor, unknown"),
    ("statuses", ("live",), "statuses must be chosen from actual, exercise"),
    ("sources", "nws", "sources must be a list of strings"),
    ("events", ("",), "events must be event names"),
    ("events", (3,), "events must be a list of strings"),
    ("marine_only", "yes", "marine_only must be true, false or null"),
    ("note", "  ", "note must say why the rule exists"),
    ("note", "x" * 501, "note must be at most 500"),
])
def test_validation_names_the_field_and_the_allowed_values(field, value, message) -> None:
    values = {"action": "exclude", "note": "why", field: value}
    with pytest.raises(ValueError, match=message):
        IncidentRule(**values)


def test_rules_round_trip_through_json() -> None:
    rules = (*DEFAULT_RULES,
             IncidentRule("include", sources=["nws", "nws"], events=[" Gale Warning "],
                          marine_only=False, note=" spaced "))
    assert rules[-1].sources == ("nws",) and rules[-1].events == ("Gale Warning",)
    assert rules[-1].note == "spaced"
    text = json.dumps(rules_to_json(rules))
    assert rules_from_json(json.loads(text)) == rules
    for rule in rules:
        assert IncidentRule.from_json(rule.to_json()) == rule
    minimal = IncidentRule.from_json({"action": "include", "note": "everything"})
    assert minimal.describe() == "any hazard" and minimal.marine_only is None


def test_a_bad_list_reports_every_bad_rule_by_position() -> None:
    good = DEFAULT_RULES[0].to_json()
    data = [good, {"action": "exclude"}, good, {"action": "exclude", "note": "n", "colour": 1},
            "exclude minor", {"action": "exclude", "severities": ["tiny"], "note": "n"}]
    with pytest.raises(RulesInvalid) as caught:
        rules_from_json(data)
    problems = dict(caught.value.problems)
    assert sorted(problems) == [2, 4, 5, 6]
    assert "note is required" in problems[2]
    assert "unknown key(s) colour" in problems[4]
    assert "must be an object" in problems[5]
    assert "severities must be chosen from" in problems[6]
    assert "rule 6:" in str(caught.value)
    with pytest.raises(RulesInvalid, match="must be a JSON list"):
        rules_from_json({"rules": []})
    with pytest.raises(RulesInvalid, match="at most 200 rules"):
        rules_from_json([good] * 201)


def test_classify_refuses_missing_columns_and_foreign_rules() -> None:
    with pytest.raises(ValueError, match="marine_only"):
        classify(frame([CASES[0][0]]).drop(columns="marine_only"), DEFAULT_RULES)
    with pytest.raises(ValueError, match="rule 1 is a dict"):
        classify(frame([CASES[0][0]]), [DEFAULT_RULES[0].to_json()])  # type: ignore[list-item]


def test_marine_only_needs_nws_and_marine_codes_alone() -> None:
    def alert(ugc: tuple[str, ...], same: tuple[str, ...] = (), source: str = "nws") -> Hazard:
        return Hazard(f"{source}:x", source, "Gale Warning", "weather",
                      properties={"ugc": ugc, "same": same})

    assert marine_only(alert(("PZZ356", "PZZ357"), ("057356",)))
    assert marine_only(alert(("LEZ142",)))
    assert not marine_only(alert(("PZZ356", "ORZ004")))     # one land zone
    assert not marine_only(alert(("PZZ356",), ("041005",)))  # a land county
    assert not marine_only(alert(()))                        # no codes: nothing says marine
    assert not marine_only(alert(("PZZ356",), source="tsunami"))


@pytest.fixture(scope="module")
def recorded() -> pd.DataFrame:
    """The recorded NWS north-west sample and the GDACS sample, as classify reads them."""
    payload = json.loads((FIXTURES / "nws" / "weathergov_northwest-alerts_alerts-active.json")
                         .read_text(encoding="utf-8"))
    alerts = nws.parse_alerts(nws.resolve_template_times(payload, now=NOW)).hazards
    events = gdacs.parse_gdacs((FIXTURES / "gdacs" / "aio-georss-gdacs_gdacs-rss.xml")
                               .read_bytes(), now=datetime(2019, 12, 30, 2, tzinfo=timezone.utc))
    return hazards_frame([*alerts, *events.hazards])


def test_recorded_feeds_classified(recorded) -> None:
    out = recorded.join(classify(recorded, DEFAULT_RULES))
    nws_rows = out[out["source"] == "nws"]
    assert len(nws_rows) == 529
    # the marine-only alerts are exactly those is_land calls marine (every alert has codes)
    assert int(nws_rows["marine_only"].sum()) == 529 - 157
    assert (nws_rows.loc[nws_rows["marine_only"], "rule"] == 1).all()
    gdacs_rows = out[out["source"] == "gdacs"].set_index("hazard_id")
    droughts = gdacs_rows.index.str.startswith("gdacs:DR-")
    assert droughts.sum() == 11 and (gdacs_rows.loc[droughts, "rule"] == 2).all()
    assert not out.loc[out["severity"] == "minor", "incident"].any()
    # what is left are land alerts and GDACS events of moderate severity or worse, or unknown
    incidents = out[out["incident"]]
    assert set(incidents["severity"]) <= {"extreme", "severe", "moderate", "unknown"}
    assert not incidents["marine_only"].any()
    assert (incidents["reason"] == NO_RULE_REASON).all()
    assert len(incidents) > 100  # the defaults cut noise, not the land weather


def test_classify_is_vectorised_enough_for_thousands(recorded) -> None:
    many = pd.concat([recorded] * 10, ignore_index=True)
    out = classify(many, DEFAULT_RULES)
    assert len(out) == len(many)
    single = classify(recorded, DEFAULT_RULES)
    assert out["rule"].to_numpy().reshape(10, -1).tolist() == [single["rule"].tolist()] * 10
