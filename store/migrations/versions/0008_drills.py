"""Drills: scenario runs with their clock, and the append-only history of each.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drills",
        sa.Column("drill_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scenario_name", sa.String(64), nullable=False),
        sa.Column("scenario_json", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("speed", sa.Float, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.Text, nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_by", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.CheckConstraint("kind IN ('scenario', 'replay')", name="drills_kind_known"),
        sa.CheckConstraint("state IN ('running', 'paused', 'stopped')",
                           name="drills_state_known"),
        sa.CheckConstraint("speed >= 1 AND speed <= 3600", name="drills_speed_range"),
    )
    op.create_table(
        "drill_events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("drill_id", sa.Integer, sa.ForeignKey("drills.drill_id"), nullable=False,
                  index=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("inject_id", sa.String(128), nullable=True),
        sa.UniqueConstraint("drill_id", "inject_id", name="drill_events_inject_once"),
    )
    # The history is append-only: the database itself refuses UPDATE and DELETE.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION drill_events_append_only() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'drill_events is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER drill_events_append_only BEFORE UPDATE OR DELETE ON "
            "drill_events FOR EACH ROW EXECUTE FUNCTION drill_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER drill_events_no_truncate BEFORE TRUNCATE ON drill_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION drill_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER drill_events_no_{verb.lower()} BEFORE {verb} ON "
                "drill_events BEGIN SELECT RAISE(ABORT, 'drill_events is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS drill_events_no_truncate ON drill_events")
        op.execute("DROP TRIGGER IF EXISTS drill_events_append_only ON drill_events")
        op.execute("DROP FUNCTION IF EXISTS drill_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS drill_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS drill_events_no_delete")
    op.drop_table("drill_events")
    op.drop_table("drills")
