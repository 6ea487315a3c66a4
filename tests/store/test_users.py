"""Users, tokens and the audit log in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from store import AccountError
from store.audit import audit_actions, audit_csv, query_audit
from store.tables import audit_log, tokens, users
from store.users import (
    SignInOutcome,
    active_token,
    authenticate,
    create_user,
    end_sessions,
    issue_token,
    list_users,
    reset_password,
    revoke_token,
    role_rank,
    set_disabled,
    set_role,
    token_for_secret,
)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"


def _auth(engine, username: str, password: str, now: datetime = NOW):
    return authenticate(engine, username, password, now=now, lockout_failures=3,
                        lockout_minutes=15, remote="127.0.0.1")


def test_roles_rank_in_order() -> None:
    assert role_rank(None) < role_rank("display") < role_rank("coordinator") < role_rank("admin")
    with pytest.raises(ValueError, match="role must be one of"):
        role_rank("superuser")


def test_users_are_stored_with_a_hash_only_and_validated(store_engine, fast_hashing) -> None:
    user = create_user(store_engine, "Alice", "coordinator", PASSWORD, actor="test", now=NOW)
    assert user.username == "alice"
    with store_engine.connect() as connection:
        stored = connection.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(AccountError, match="already exists"):
        create_user(store_engine, "alice", "display", PASSWORD, actor="test", now=NOW)
    with pytest.raises(AccountError, match="role must be one of"):
        create_user(store_engine, "bob", "root", PASSWORD, actor="test", now=NOW)
    with pytest.raises(AccountError, match="password must be"):
        create_user(store_engine, "bob", "display", "short", actor="test", now=NOW)
    with pytest.raises(AccountError, match="username must be"):
        create_user(store_engine, "bad name!", "display", PASSWORD, actor="test", now=NOW)
    assert [u.username for u in list_users(store_engine)] == ["alice"]


def test_sign_in_outcomes_lockout_and_audit(store_engine, fast_hashing) -> None:
    create_user(store_engine, "alice", "admin", PASSWORD, actor="test", now=NOW)
    assert _auth(store_engine, "nobody", PASSWORD).outcome is SignInOutcome.UNKNOWN_USER
    for _ in range(3):
        assert _auth(store_engine, "alice", "wrong password!").outcome is \
            SignInOutcome.BAD_PASSWORD
    # locked now: even the right password is refused until the lock runs out
    assert _auth(store_engine, "alice", PASSWORD).outcome is SignInOutcome.LOCKED
    later = NOW + timedelta(minutes=16)
    result = _auth(store_engine, "alice", PASSWORD, now=later)
    assert result.ok and result.user is not None and result.user.last_sign_in == later
    events = query_audit(store_engine, action="signin")
    reasons = [e.detail.get("reason") for e in reversed(events)]
    assert reasons == ["unknown_user", "bad_password", "bad_password", "bad_password", "locked",
                       None]
    assert events[0].action == "signin.ok"
    # an unknown username is not recorded (it may be a password typed in the wrong field)
    assert "nobody" not in json.dumps([e.detail for e in events])
    assert [e.action for e in query_audit(store_engine, action="user.locked")] == ["user.locked"]
    set_disabled(store_engine, "alice", True, actor="test", now=later)
    assert _auth(store_engine, "alice", PASSWORD, now=later).outcome is SignInOutcome.DISABLED


def test_changes_end_sessions_and_are_audited(store_engine, fast_hashing) -> None:
    user = create_user(store_engine, "alice", "display", PASSWORD, actor="cli:root", now=NOW)
    assert set_role(store_engine, "alice", "coordinator", actor="cli:root",
                    now=NOW).session_epoch == user.session_epoch + 1
    assert set_disabled(store_engine, "alice", True, actor="cli:root", now=NOW).disabled
    assert not set_disabled(store_engine, "alice", False, actor="cli:root", now=NOW).disabled
    reset_password(store_engine, "alice", "another long password", actor="cli:root", now=NOW)
    end_sessions(store_engine, user.user_id, actor="user:alice", now=NOW)
    with pytest.raises(AccountError, match="no user called"):
        set_role(store_engine, "bob", "admin", actor="cli:root", now=NOW)
    actions = [e.action for e in reversed(query_audit(store_engine))]
    assert actions == ["user.add", "user.role", "user.disable", "user.enable",
                       "user.password_reset", "signout"]
    role_change = query_audit(store_engine, action="user.role")[0]
    assert role_change.detail["from"] == "display" and role_change.detail["to"] == "coordinator"
    assert "another long password" not in json.dumps([e.detail for e in query_audit(
        store_engine)])


def test_tokens_are_hashed_and_revocation_is_immediate(store_engine) -> None:
    token, secret = issue_token(store_engine, "ops wall 1", actor="cli:root", now=NOW)
    assert secret.startswith("mwd_") and len(secret) > 40
    with store_engine.connect() as connection:
        stored = connection.execute(sa.select(tokens.c.token_hash)).scalar_one()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    found = token_for_secret(store_engine, secret, now=NOW)
    assert found is not None and found.token_id == token.token_id
    assert token_for_secret(store_engine, secret + "x", now=NOW) is None
    assert token_for_secret(store_engine, "not a token", now=NOW) is None
    assert active_token(store_engine, token.token_id, now=NOW) is not None
    revoke_token(store_engine, token.token_id, actor="cli:root", now=NOW)
    assert token_for_secret(store_engine, secret, now=NOW) is None
    assert active_token(store_engine, token.token_id, now=NOW) is None
    with pytest.raises(AccountError, match="no token"):
        revoke_token(store_engine, 999, actor="cli:root", now=NOW)
    with pytest.raises(AccountError, match="role must be display"):
        issue_token(store_engine, "api", role="admin", actor="cli:root", now=NOW)
    assert [e.action for e in reversed(query_audit(store_engine))] == ["token.issue",
                                                                      "token.revoke"]
    assert secret not in json.dumps([e.detail for e in query_audit(store_engine)])


def test_audit_log_is_append_only_in_the_database(store_engine) -> None:
    issue_token(store_engine, "wall", actor="test", now=NOW)
    for statement in (audit_log.update().values(actor="someone else"), audit_log.delete()):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), \
                store_engine.begin() as connection:
            connection.execute(statement)
    assert len(query_audit(store_engine)) == 1


def test_audit_filters_and_csv(store_engine) -> None:
    for name in ("wall-a", "wall-b"):
        issue_token(store_engine, name, actor="cli:root", now=NOW)
    revoke_token(store_engine, 1, actor="user:alice", now=NOW + timedelta(days=2))
    assert audit_actions(store_engine) == ["token.issue", "token.revoke"]
    assert len(query_audit(store_engine, action="token")) == 3
    assert len(query_audit(store_engine, action="token.issue")) == 2
    assert len(query_audit(store_engine, action="tok")) == 0  # a prefix means a whole part
    assert len(query_audit(store_engine, actor="ALICE")) == 1
    assert len(query_audit(store_engine, actor="%")) == 0  # LIKE wildcards are literal
    assert len(query_audit(store_engine, since=NOW + timedelta(days=1))) == 1
    assert len(query_audit(store_engine, until=NOW + timedelta(days=1))) == 2
    text = audit_csv(query_audit(store_engine))
    assert text.splitlines()[0] == "event_id,at,actor,action,detail"
    assert len(text.splitlines()) == 4
    from store.audit import AuditEvent

    risky = AuditEvent(1, NOW, "=cmd|' /C calc'!A0", "x", {})
    assert "'=cmd" in audit_csv([risky])
