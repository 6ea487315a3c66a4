"""API tokens: they belong to a user and act with the user's role as it is now."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from store import AccountError
from store.audit import query_audit
from store.tables import tokens
from store.users import (
    active_token,
    create_user,
    issue_api_token,
    issue_token,
    list_tokens,
    revoke_token,
    set_disabled,
    set_role,
    token_for_secret,
)

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)
PASSWORD = "a long enough password"


def test_api_tokens_act_as_their_user_with_the_current_role(store_engine, fast_hashing) -> None:
    ana = create_user(store_engine, "ana", "coordinator", PASSWORD, actor="test", now=NOW)
    token, secret = issue_api_token(store_engine, "Ana", "laptop", actor="cli:root", now=NOW)
    assert secret.startswith("mwa_") and len(secret) > 40
    assert token.kind == "api" and token.user_id == ana.user_id and token.username == "ana"
    assert token.role == "coordinator" and token.name == "laptop"
    with store_engine.connect() as connection:
        row = connection.execute(sa.select(tokens)).one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert row.role == "api" and row.user_id == ana.user_id
    found = token_for_secret(store_engine, secret, now=NOW)
    assert found is not None and found.token_id == token.token_id and not found.user_disabled
    # the role and the state are the user's as they are now
    set_role(store_engine, "ana", "admin", actor="test", now=NOW)
    assert token_for_secret(store_engine, secret, now=NOW).role == "admin"
    set_disabled(store_engine, "ana", True, actor="test", now=NOW)
    assert token_for_secret(store_engine, secret, now=NOW).user_disabled
    set_disabled(store_engine, "ana", False, actor="test", now=NOW)
    assert not token_for_secret(store_engine, secret, now=NOW).user_disabled
    revoke_token(store_engine, token.token_id, actor="cli:root", now=NOW)
    assert token_for_secret(store_engine, secret, now=NOW) is None
    assert active_token(store_engine, token.token_id, now=NOW) is None
    issue = query_audit(store_engine, action="token.issue")[0]
    assert issue.detail == {"token_id": token.token_id, "name": "laptop", "role": "api",
                            "user_id": ana.user_id, "username": "ana"}
    assert secret not in json.dumps([e.detail for e in query_audit(store_engine)])


def test_api_tokens_are_refused_for_unknown_or_disabled_users(store_engine,
                                                              fast_hashing) -> None:
    create_user(store_engine, "bo", "coordinator", PASSWORD, actor="test", now=NOW)
    with pytest.raises(AccountError, match="no user"):
        issue_api_token(store_engine, "nobody", actor="test", now=NOW)
    with pytest.raises(AccountError, match="token name"):
        issue_api_token(store_engine, "bo", "bad/name", actor="test", now=NOW)
    set_disabled(store_engine, "bo", True, actor="test", now=NOW)
    with pytest.raises(AccountError, match="disabled"):
        issue_api_token(store_engine, "bo", actor="test", now=NOW)
    assert list_tokens(store_engine) == []


def test_display_and_api_tokens_are_listed_together(store_engine, fast_hashing) -> None:
    create_user(store_engine, "cy", "display", PASSWORD, actor="test", now=NOW)
    wall, wall_secret = issue_token(store_engine, "ops wall", actor="test", now=NOW)
    api, _ = issue_api_token(store_engine, "cy", actor="test", now=NOW)
    listed = list_tokens(store_engine)
    assert [(t.token_id, t.kind, t.role, t.username) for t in listed] == [
        (wall.token_id, "display", "display", None), (api.token_id, "api", "display", "cy")]
    assert listed[1].name == "api"
    assert listed[1].as_json()["kind"] == "api" and listed[1].as_json()["user"] == "cy"
    assert token_for_secret(store_engine, wall_secret, now=NOW).kind == "display"
    # a display token is still only ever a display token
    with pytest.raises(AccountError, match="role must be display"):
        issue_token(store_engine, "x", role="coordinator", actor="test", now=NOW)
