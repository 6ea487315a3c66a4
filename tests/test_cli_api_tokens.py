"""`python app.py users token --api USERNAME`: API tokens from the command line."""

from __future__ import annotations

import json
import re

import pytest

import app as cli
from store.audit import query_audit
from store.db import open_store
from store.users import list_tokens, token_for_secret


@pytest.fixture
def run(database_url, tmp_path, monkeypatch, capsys, fast_hashing):
    """Run ``app.main`` in-process against a scratch store; returns (status, stdout, stderr)."""
    for name in ("MISSIONWATCH_LOG_LEVEL", "MISSIONWATCH_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
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


def test_api_token_issue_list_and_revoke(run) -> None:
    assert run("users", "add", "ana", "--role", "coordinator")[0] == 0
    assert run("users", "token", "--display", "ops wall")[0] == 0
    status, out, _ = run("users", "token", "--api", "ana", "--name", "laptop")
    assert status == 0 and "acts as ana" in out and "coordinator" in out
    secret = re.search(r"mwa_[A-Za-z0-9_-]+", out).group(0)
    token = token_for_secret(run.engine, secret, now=cli._now())
    assert token is not None and token.kind == "api" and token.username == "ana"
    status, out, _ = run("users", "list")
    assert status == 0 and secret not in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("2 ")]
    assert rows and rows[0][1:5] == ["api", "laptop", "ana", "coordinator"]
    status, out, _ = run("users", "list", "--json")
    listed = json.loads(out)["tokens"]
    assert [(t["kind"], t["user"]) for t in listed] == [("display", None), ("api", "ana")]
    assert run("users", "token", "--revoke", str(token.token_id))[0] == 0
    assert token_for_secret(run.engine, secret, now=cli._now()) is None
    assert list_tokens(run.engine)[1].revoked_at is not None
    issued = [e for e in query_audit(run.engine, action="token.issue") if e.detail["role"] == "api"]
    assert issued and issued[0].detail["username"] == "ana"


def test_api_token_refusals(run) -> None:
    assert run("users", "token", "--api", "nobody")[0] == 1
    assert run("users", "add", "bo", "--role", "coordinator")[0] == 0
    assert run("users", "token", "--display", "wall", "--name", "x")[0] == 1
    assert run("users", "disable", "bo")[0] == 0
    status, _, err = run("users", "token", "--api", "bo")
    assert status == 1 and "disabled" in err
    with pytest.raises(SystemExit):
        run("users", "token", "--api", "bo", "--display", "wall")
    assert list_tokens(run.engine) == []
