"""Incident rules: which active hazards become incidents, and why each one did or did not.

A rule matches hazards by source, category, event, severity, status and whether an NWS alert
is marine only; every criterion left empty matches anything. Rules are tried in order and the
**first rule that matches decides** (include: an incident; exclude: not one). A hazard that no
rule matches *is* an incident: nothing is hidden by omission, and every decision carries a
reason (the deciding rule's note) so a filtered-out hazard can be shown with why.

* :class:`IncidentRule` — one rule, validated against the vocabularies of :mod:`feeds.model`.
* :data:`DEFAULT_RULES` — what a fresh store uses (the admin page and ``app.py rules`` edit it).
* :func:`classify` — decisions for a table of hazards, vectorised (one pass per rule).
* :func:`hazards_frame` — that table from :class:`~feeds.model.Hazard` records.
* :func:`marine_only` — whether an NWS alert names only marine zones.
* :func:`rules_from_json` / :func:`rules_to_json` — a whole list, every bad rule reported.

Event names match case-insensitively, either the whole event name (``"Small Craft Advisory"``)
or, for events labelled ``"Type: place"`` as GDACS labels them (``"Drought: Turkey-2019"``),
the type before the first colon (``"Drought"``).

Errors: a bad rule raises ``ValueError`` naming the field and the allowed values; a bad list
raises :class:`RulesInvalid` (a ``ValueError``) listing every bad rule by position (1 = first).
pandas only: no store, no dash.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from feeds.model import CATEGORIES, SEVERITIES, SOURCES, STATUSES

if TYPE_CHECKING:
    from feeds.model import Hazard

ACTIONS: tuple[str, ...] = ("include", "exclude")
#: The columns :func:`classify` reads.
HAZARD_COLUMNS: tuple[str, ...] = ("hazard_id", "source", "category", "event", "severity",
                                   "status", "marine_only")
#: The columns :func:`classify` returns.
DECISION_COLUMNS: tuple[str, ...] = ("incident", "rule", "reason")
NO_RULE_REASON = "no rule matched: shown as an incident"
NO_RULE = -1
MAX_RULES = 200
MAX_NOTE_LENGTH = 500
MAX_EVENT_LENGTH = 200

_VOCABULARIES: Mapping[str, tuple[str, ...]] = {
    "sources": SOURCES, "categories": CATEGORIES, "severities": SEVERITIES,
    "statuses": STATUSES,
}
_LABELS: tuple[tuple[str, str], ...] = (("sources", "source"), ("categories", "category"),
                                        ("severities", "severity"), ("statuses", "status"))
_FIELDS: tuple[str, ...] = ("action", "sources", "categories", "severities", "statuses",
                            "events", "marine_only", "note")


class RulesInvalid(ValueError):
    """A list of rules was refused; ``problems`` holds ``(position, reason)`` for every bad
    rule (position 1 is the first rule; 0 is the list itself)."""

    def __init__(self, problems: Sequence[tuple[int, str]]) -> None:
        self.problems: tuple[tuple[int, str], ...] = tuple(problems)
        super().__init__("; ".join(
            (f"rule {position}: {reason}" if position else reason)
            for position, reason in self.problems))


def _strings(name: str, value: Any) -> tuple[str, ...]:
    """A tuple of distinct strings (order kept) from a list or tuple, else ValueError."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of strings (empty = any), got {value!r}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"{name} must be a list of strings, got the item {item!r}")
        if item not in out:
            out.append(item)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class IncidentRule:
    """One rule: which hazards it matches (empty = any) and what it decides, with why.

    ``events`` are event names matched case-insensitively (see the module docstring);
    ``marine_only`` True matches only NWS alerts that name marine zones alone, False only the
    others, None both.
    """

    action: str
    sources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    marine_only: bool | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}; got {self.action!r}")
        for name, allowed in _VOCABULARIES.items():
            values = _strings(name, getattr(self, name))
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ValueError(f"{name} must be chosen from {', '.join(allowed)}; got "
                                 f"{', '.join(repr(v) for v in bad)}")
            object.__setattr__(self, name, values)
        events = tuple(e.strip() for e in _strings("events", self.events))
        for event in events:
            if not event or len(event) > MAX_EVENT_LENGTH:
                raise ValueError(f"events must be event names of 1 to {MAX_EVENT_LENGTH} "
                                 f"characters, got {event!r}")
        object.__setattr__(self, "events", tuple(dict.fromkeys(events)))
        if self.marine_only is not None and not isinstance(self.marine_only, bool):
            raise ValueError(f"marine_only must be true, false or null (either); got "
                             f"{self.marine_only!r}")
        if not isinstance(self.note, str) or not self.note.strip():
            raise ValueError("note must say why the rule exists (it is shown with every "
                             "hazard the rule decides)")
        if len(self.note) > MAX_NOTE_LENGTH:
            raise ValueError(f"note must be at most {MAX_NOTE_LENGTH} characters, got "
                             f"{len(self.note)}")
        object.__setattr__(self, "note", self.note.strip())

    @property
    def includes(self) -> bool:
        return self.action == "include"

    def describe(self) -> str:
        """What the rule matches, in words: ``source nws, marine only`` or ``any hazard``."""
        parts = [f"{label} {' or '.join(getattr(self, name))}"
                 for name, label in _LABELS if getattr(self, name)]
        if self.events:
            parts.append("event " + " or ".join(repr(e) for e in self.events))
        if self.marine_only is not None:
            parts.append("marine only" if self.marine_only else "not marine only")
        return ", ".join(parts) or "any hazard"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with every field (lists for the tuples)."""
        return {"action": self.action, "sources": list(self.sources),
                "categories": list(self.categories), "severities": list(self.severities),
                "statuses": list(self.statuses), "events": list(self.events),
                "marine_only": self.marine_only, "note": self.note}

    @classmethod
    def from_json(cls, data: Any) -> IncidentRule:
        """The rule of a dict as :meth:`to_json` writes it; ``action`` and ``note`` are
        required, the rest default to "any". Unknown keys are refused (a typo would
        otherwise widen the rule silently)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a rule must be an object with the keys {', '.join(_FIELDS)}; "
                             f"got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in _FIELDS)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; a rule has the keys "
                             f"{', '.join(_FIELDS)}")
        for required in ("action", "note"):
            if required not in data:
                raise ValueError(f"{required} is required")
        return cls(**{key: data[key] for key in _FIELDS if key in data})


def rules_to_json(rules: Iterable[IncidentRule]) -> list[dict[str, Any]]:
    """The rules as a JSON-ready list, in order."""
    return [rule.to_json() for rule in rules]


def rules_from_json(data: Any) -> tuple[IncidentRule, ...]:
    """A whole list of rules, or :class:`RulesInvalid` naming every bad rule by position."""
    if not isinstance(data, list):
        raise RulesInvalid([(0, f"the rules must be a JSON list of rule objects, got "
                                f"{type(data).__name__}")])
    if len(data) > MAX_RULES:
        raise RulesInvalid([(0, f"at most {MAX_RULES} rules, got {len(data)}")])
    rules: list[IncidentRule] = []
    problems: list[tuple[int, str]] = []
    for position, item in enumerate(data, start=1):
        try:
            rules.append(IncidentRule.from_json(item))
        except (ValueError, TypeError) as exc:
            problems.append((position, str(exc)))
    if problems:
        raise RulesInvalid(problems)
    return tuple(rules)


#: The rules of a fresh store. First match wins; a hazard no rule matches is an incident.
#: Exercises are left to the rules for real events (drills get their own handling), and
#: "unknown" severity is never treated as minor.
DEFAULT_RULES: tuple[IncidentRule, ...] = (
    IncidentRule(
        action="exclude", statuses=("test", "system", "draft"),
        note="Test, system and draft messages are not real events."),
    IncidentRule(
        action="exclude", sources=("nws",), marine_only=True,
        note="Marine-only NWS alert: it names only coastal, offshore or Great Lakes waters, "
             "where no mission or residence is."),
    IncidentRule(
        action="exclude", sources=("gdacs",), categories=("other",), events=("Drought",),
        note="GDACS drought: a slow, season-long event that needs no emergency response."),
    IncidentRule(
        action="exclude", severities=("minor",),
        note="Minor severity: advisories, small earthquakes (PAGER green), GDACS green "
             "alerts."),
)


def marine_only(hazard: Hazard) -> bool:
    """Whether ``hazard`` is an NWS alert that names marine zones or areas only (UGC/SAME).

    An alert without any code is not marine only (nothing says so); other sources never are.
    """
    if hazard.source != "nws":
        return False
    if not (hazard.properties.get("ugc") or hazard.properties.get("same")):
        return False
    from feeds.nws import is_land  # the NWS module loads the bundled geography

    return not is_land(hazard)


def hazards_frame(hazards: Iterable[Hazard]) -> pd.DataFrame:
    """The table :func:`classify` reads (:data:`HAZARD_COLUMNS`), one row per hazard."""
    rows = [(h.hazard_id, h.source, h.category, h.event, h.severity, h.status, marine_only(h))
            for h in hazards]
    frame = pd.DataFrame(rows, columns=list(HAZARD_COLUMNS))
    return frame.astype({"marine_only": bool})


def _folded(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str).str.strip().str.casefold()


def classify(hazards: pd.DataFrame, rules: Sequence[IncidentRule]) -> pd.DataFrame:
    """Which hazards are incidents, by which rule and why.

    ``hazards`` has the columns :data:`HAZARD_COLUMNS` (``marine_only`` bool; other columns
    are ignored). Returns a frame indexed like ``hazards`` with ``incident`` (bool), ``rule``
    (the 0-based position of the deciding rule, :data:`NO_RULE` when none matched) and
    ``reason`` (that rule's note, or :data:`NO_RULE_REASON`). One vectorised pass per rule.
    """
    if not isinstance(hazards, pd.DataFrame):
        raise ValueError(f"hazards must be a pandas DataFrame, got {type(hazards).__name__}")
    missing = [c for c in HAZARD_COLUMNS if c not in hazards.columns]
    if missing:
        raise ValueError(f"hazards lacks the column(s) {', '.join(missing)}; needed: "
                         f"{', '.join(HAZARD_COLUMNS)}")
    rules = tuple(rules)
    for position, rule in enumerate(rules, start=1):
        if not isinstance(rule, IncidentRule):
            raise ValueError(f"rules must be IncidentRule records; rule {position} is a "
                             f"{type(rule).__name__}")
    count = len(hazards)
    columns = {name: hazards[name].fillna("").astype(str)
               for name in ("source", "category", "severity", "status")}
    event = _folded(hazards["event"])
    event_type = event.str.split(":", n=1).str[0].str.strip()
    marine = hazards["marine_only"].eq(True).to_numpy(dtype=bool)  # missing: not marine
    decided_by = np.full(count, NO_RULE, dtype=np.int64)
    open_ = np.ones(count, dtype=bool)
    for position, rule in enumerate(rules):
        if not open_.any():
            break
        match = open_.copy()
        for name, column in _LABELS:
            wanted = getattr(rule, name)
            if wanted:
                match &= columns[column].isin(wanted).to_numpy()
        if rule.events:
            names = [e.casefold() for e in rule.events]
            match &= (event.isin(names) | event_type.isin(names)).to_numpy()
        if rule.marine_only is not None:
            match &= marine == rule.marine_only
        decided_by[match] = position
        open_ &= ~match
    includes = np.array([rule.includes for rule in rules] + [True], dtype=bool)
    notes = np.array([rule.note for rule in rules] + [NO_RULE_REASON], dtype=object)
    # NO_RULE (-1) picks the last element: "included, no rule matched"
    return pd.DataFrame({"incident": includes[decided_by], "rule": decided_by,
                         "reason": notes[decided_by]}, index=hazards.index)
