"""Outreach: boards, their targets, and the append-only history of status updates.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outreach_boards",
        sa.Column("board_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("hazard_ids", sa.Text, nullable=False),
        sa.Column("selection", sa.String(255), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("exercise", sa.Boolean, nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "outreach_targets",
        sa.Column("board_id", sa.Integer, sa.ForeignKey("outreach_boards.board_id"),
                  primary_key=True),
        sa.Column("target_kind", sa.String(16), primary_key=True),
        sa.Column("target_id", sa.String(64), primary_key=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outreach_events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("board_id", sa.Integer, sa.ForeignKey("outreach_boards.board_id"),
                  nullable=False, index=True),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("previous_event_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.UniqueConstraint("board_id", "target_kind", "target_id", "previous_event_id",
                            name="outreach_events_one_successor"),
        sa.UniqueConstraint("board_id", "request_id", name="outreach_events_request_once"),
    )
    # The history is append-only: the database itself refuses UPDATE and DELETE.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION outreach_events_append_only() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'outreach_events is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER outreach_events_append_only BEFORE UPDATE OR DELETE ON "
            "outreach_events FOR EACH ROW EXECUTE FUNCTION outreach_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER outreach_events_no_truncate BEFORE TRUNCATE ON outreach_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION outreach_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER outreach_events_no_{verb.lower()} BEFORE {verb} ON "
                "outreach_events BEGIN SELECT RAISE(ABORT, 'outreach_events is append-only'); "
                "END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS outreach_events_no_truncate ON outreach_events")
        op.execute("DROP TRIGGER IF EXISTS outreach_events_append_only ON outreach_events")
        op.execute("DROP FUNCTION IF EXISTS outreach_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS outreach_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS outreach_events_no_delete")
    op.drop_table("outreach_events")
    op.drop_table("outreach_targets")
    op.drop_table("outreach_boards")
