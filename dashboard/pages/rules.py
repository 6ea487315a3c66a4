"""Incident rules: which active hazards become incidents; admins read and edit them here.

The rules in force are listed in order with what each matches, why it exists and how many of
the active hazards it decides now. Admins edit the whole list as JSON: it is checked before
anything is saved (every bad rule named by position), and saved against the version it was
loaded from, so a change someone made meanwhile is reported instead of overwritten.
Admins only: the page and its callback declare ``admin``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html
from sqlalchemy.engine import Engine

from dashboard import auth, ids
from dashboard.services import current
from feeds.model import CATEGORIES, SEVERITIES, SOURCES, STATUSES
from layers.incidents import (
    NO_RULE,
    RulesInvalid,
    classify,
    hazards_frame,
    rules_from_json,
    rules_to_json,
)
from store.feeds import load_hazards
from store.rules import RulesConflict, RuleSet, load_rules, reset_rules, save_rules

dash.register_page(__name__, path="/rules", title="Mission Watch - incident rules",
                   name="Incident rules", min_role="admin")


def _when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def rules_text(ruleset: RuleSet) -> str:
    """The rules as the editor shows them: a JSON list, one rule per line, "any" left out."""
    lines = [json.dumps({key: value for key, value in rule.items() if value not in ([], None)})
             for rule in rules_to_json(ruleset.rules)]
    return "[\n" + ",\n".join(f"  {line}" for line in lines) + "\n]" if lines else "[]"


def _status(ruleset: RuleSet) -> html.P:
    if ruleset.is_default:
        text = "Built-in defaults (version 0): never changed in this store."
    else:
        text = (f"Version {ruleset.version}, saved {_when(ruleset.updated_at)} by "
                f"{ruleset.updated_by}.")
    return html.P(text, className="rules-status")


def current_rules(engine: Engine, ruleset: RuleSet, now: datetime) -> list:
    """The status line, the rules table (with what each decides now) and a summary."""
    frame = hazards_frame(load_hazards(engine, now=now))
    decisions = classify(frame, ruleset.rules)
    decided = decisions["rule"].value_counts()
    rows = [html.Tr([html.Td(str(position + 1)), html.Td(rule.action),
                     html.Td(rule.describe()), html.Td(rule.note),
                     html.Td(f"{int(decided.get(position, 0)):,}")])
            for position, rule in enumerate(ruleset.rules)]
    rows.append(html.Tr([html.Td(""), html.Td("include"), html.Td("anything no rule matches"),
                         html.Td("No rule matched: shown as an incident."),
                         html.Td(f"{int(decided.get(NO_RULE, 0)):,}")], className="muted"))
    table = html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in
                             ("#", "Action", "Matches", "Why", "Active hazards now")])),
         html.Tbody(rows)], id=ids.RULES_TABLE, className="counts admin")
    incidents = int(decisions["incident"].sum())
    summary = html.P(f"Active hazards now: {len(frame):,}; incidents: {incidents:,}; "
                     f"filtered out: {len(frame) - incidents:,} (still listed, each with the "
                     "rule that filtered it).", className="muted")
    return [_status(ruleset), table, summary]


def _help() -> html.Details:
    fields = [
        ("action", "include or exclude (required)"),
        ("sources", ", ".join(SOURCES)),
        ("categories", ", ".join(CATEGORIES)),
        ("severities", ", ".join(SEVERITIES)),
        ("statuses", ", ".join(STATUSES)),
        ("events", "event names, any case: 'Small Craft Advisory'; for 'Type: place' labels "
                   "(GDACS 'Drought: Turkey-2019') the type alone: 'Drought'"),
        ("marine_only", "true (NWS alerts naming only marine zones), false, or null (either)"),
        ("note", "why the rule exists (required): shown with every hazard it decides"),
    ]
    return html.Details([
        html.Summary("How to write a rule"),
        html.P("A JSON list of rule objects, tried in order: the first rule that matches a "
               "hazard decides. A list left empty (or left out) matches anything."),
        html.Ul([html.Li([html.Code(name), f": {allowed}"]) for name, allowed in fields]),
    ])


def layout(**_query: str) -> html.Div:
    engine = current().engine
    now = datetime.now(timezone.utc)
    try:
        ruleset = load_rules(engine)
    except RulesInvalid as exc:
        return html.Div([html.H2("Incident rules"),
                         html.P(f"The stored rules no longer validate: {exc}. Run "
                                "'python app.py rules reset' or 'rules set FILE'.",
                                className="notice")])
    return html.Div([
        html.H2("Incident rules"),
        html.P("Rules decide which active hazards become incidents. They are tried in order "
               "and the first that matches decides; a hazard that no rule matches is an "
               "incident. Nothing is hidden: filtered-out hazards stay one click away, with "
               "the rule that filtered them.", className="muted"),
        html.Div(current_rules(engine, ruleset, now), id=ids.RULES_CURRENT),
        html.H3("Edit"),
        _help(),
        dcc.Textarea(id=ids.RULES_EDITOR, value=rules_text(ruleset), spellCheck=False,
                     className="rules-editor",
                     style={"width": "100%", "height": "28rem", "fontFamily": "monospace"}),
        dcc.Store(id=ids.RULES_VERSION, data=ruleset.version),
        html.Div([
            html.Button("Save rules", id=ids.RULES_SAVE),
            html.Button("Load the stored rules", id=ids.RULES_RELOAD),
            html.Button("Reset to defaults", id=ids.RULES_RESET),
        ], className="admin-form"),
        html.Div(id=ids.RULES_RESULT, className="admin-result"),
    ])


def _problems(exc: RulesInvalid) -> list:
    items = [html.Li(f"rule {position}: {reason}" if position else reason)
             for position, reason in exc.problems]
    return ["Not saved; fix these and save again:", html.Ul(items)]


def rules_action(action: str, text: str | None, loaded_version: Any, *, engine: Engine,
                 actor: str, now: datetime) -> tuple:
    """Save the edited rules, reset to the defaults, or load the stored ones.

    Returns (current rules, message, version for the editor, editor text); ``dash.no_update``
    where nothing changes: a refused or conflicting save keeps the admin's text and the
    version it was based on, so saving again conflicts until the stored rules are loaded.
    """
    keep = dash.no_update
    if action == "reload":
        ruleset = load_rules(engine)
        return (current_rules(engine, ruleset, now),
                f"Loaded version {ruleset.version}.", ruleset.version, rules_text(ruleset))
    if not isinstance(loaded_version, int) or isinstance(loaded_version, bool):
        return keep, "Reload the page: the version of the rules you edit is unknown.", keep, keep
    try:
        if action == "reset":
            ruleset = reset_rules(engine, actor, now, expected_version=loaded_version)
            message = f"Reset to the built-in defaults (version {ruleset.version})."
        else:
            try:
                data = json.loads(text or "")
            except json.JSONDecodeError as exc:
                return (keep, f"Not saved: the text is not JSON (line {exc.lineno}, column "
                              f"{exc.colno}: {exc.msg}).", keep, keep)
            rules = rules_from_json(data)
            ruleset = save_rules(engine, rules, actor, now, expected_version=loaded_version)
            message = f"Saved {len(ruleset.rules)} rule(s) as version {ruleset.version}."
    except RulesInvalid as exc:
        return keep, _problems(exc), keep, keep
    except RulesConflict as exc:
        stored = load_rules(engine)
        return (current_rules(engine, stored, now),
                f"Not saved: {exc} Your text is kept below; 'Load the stored rules' replaces "
                "it with theirs.", keep, keep)
    return current_rules(engine, ruleset, now), message, ruleset.version, rules_text(ruleset)


@auth.callback("admin", Output(ids.RULES_CURRENT, "children"),
               Output(ids.RULES_RESULT, "children"), Output(ids.RULES_VERSION, "data"),
               Output(ids.RULES_EDITOR, "value"),
               Input(ids.RULES_SAVE, "n_clicks"), Input(ids.RULES_RESET, "n_clicks"),
               Input(ids.RULES_RELOAD, "n_clicks"),
               State(ids.RULES_EDITOR, "value"), State(ids.RULES_VERSION, "data"),
               prevent_initial_call=True)
def rules_buttons(_save: int | None, _reset: int | None, _reload: int | None,
                  text: str | None, loaded_version: Any) -> tuple:
    """Save, reset or reload, as the clicked button says."""
    action = {ids.RULES_SAVE: "save", ids.RULES_RESET: "reset",
              ids.RULES_RELOAD: "reload"}.get(ctx.triggered_id)
    if action is None:
        raise dash.exceptions.PreventUpdate
    return rules_action(action, text, loaded_version, engine=current().engine,
                        actor=auth.current_actor(), now=datetime.now(timezone.utc))
