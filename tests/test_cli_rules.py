"""`python app.py rules list|set|reset` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest

import app as cli
from layers.incidents import DEFAULT_RULES, IncidentRule, rules_to_json
from store.audit import query_audit
from store.db import open_store
from store.rules import load_rules


@pytest.fixture
def run(database_url, tmp_path, monkeypatch, capsys):
    """Run ``app.main`` in-process against a scratch store; returns (status, stdout, stderr)."""
    monkeypatch.delenv("MISSIONWATCH_LOG_LEVEL", raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MISSIONWATCH_DATA_DIR", str(tmp_path))

    def invoke(*args: str) -> tuple[int, str, str]:
        status = cli.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    engine = open_store(database_url)
    invoke.engine = engine  # type: ignore[attr-defined]
    yield invoke
    engine.dispose()


RULE = IncidentRule("include", sources=("nhc",), note="Every NHC product is worked.")


def test_list_shows_the_defaults_in_order(run) -> None:
    status, out, _ = run("rules", "list")
    assert status == 0
    assert "built-in defaults (version 0" in out and "First match wins" in out
    positions = [out.index(rule.note) for rule in DEFAULT_RULES]
    assert positions == sorted(positions)
    assert "source nws, marine only" in out
    status, out, _ = run("rules", "list", "--json")
    data = json.loads(out)
    assert status == 0 and data["version"] == 0 and data["updated_by"] is None
    assert data["rules"] == rules_to_json(DEFAULT_RULES)


def test_set_then_reset_are_stored_and_audited(run, tmp_path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules_to_json((RULE, *DEFAULT_RULES))), encoding="utf-8")
    status, out, _ = run("rules", "set", str(path))
    assert status == 0 and "Saved 5 incident rule(s) as version 1" in out
    stored = load_rules(run.engine)
    assert stored.rules == (RULE, *DEFAULT_RULES) and stored.updated_by.startswith("cli:")
    status, out, _ = run("rules", "list")
    assert "version 1" in out and RULE.note in out
    # the output of 'rules list --json' is accepted as it is, and --expected-version guards it
    _, listed, _ = run("rules", "list", "--json")
    path.write_text(listed, encoding="utf-8")
    status, _, err = run("rules", "set", str(path), "--expected-version", "0")
    assert status == 1 and "after you loaded version 0" in err
    assert run("rules", "set", str(path), "--expected-version", "1")[0] == 0
    status, out, _ = run("rules", "reset")
    assert status == 0 and "reset to the 4 built-in defaults (version 3)" in out
    assert load_rules(run.engine).rules == DEFAULT_RULES
    actions = [e.action for e in query_audit(run.engine, action="rules")]
    assert actions == ["rules.reset", "rules.update", "rules.update"]


def test_a_bad_file_saves_nothing_and_names_each_bad_rule(run, tmp_path) -> None:
    run("rules", "set", str(_write(tmp_path, [RULE.to_json()])))
    bad = [RULE.to_json(), {"action": "exclude", "severities": ["tiny"], "note": "n"},
           {"action": "exclude", "note": "n", "source": ["nws"]}, {"action": "exclude"}]
    status, out, err = run("rules", "set", str(_write(tmp_path, bad)))
    assert status == 1 and out == ""
    assert "3 bad rule(s); the stored rules are unchanged" in err
    assert "rule 2: severities must be chosen from extreme, severe" in err
    assert "rule 3: unknown key(s) source" in err
    assert "rule 4: note is required" in err
    assert "rule 1:" not in err
    for text in ("not json at all", ""):
        path = tmp_path / "broken.json"
        path.write_text(text, encoding="utf-8")
        status, _, err = run("rules", "set", str(path))
        assert status == 1 and "is not JSON" in err
    status, _, err = run("rules", "set", str(_write(tmp_path, {"action": "exclude"})))
    assert status == 1 and "must be a JSON list" in err
    status, _, err = run("rules", "set", str(tmp_path / "missing.json"))
    assert status == 1 and "cannot read" in err
    assert load_rules(run.engine).rules == (RULE,) and load_rules(run.engine).version == 1
    assert len(query_audit(run.engine, action="rules")) == 1


def _write(tmp_path, data) -> object:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
