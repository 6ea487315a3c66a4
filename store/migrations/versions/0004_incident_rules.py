"""Incident rules: the current list, in order, and the version row (who saved it, when).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_rules",
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rule", sa.Text, nullable=False),
    )
    op.create_table(
        "incident_rules_version",
        sa.Column("singleton", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.CheckConstraint("singleton = 1", name="incident_rules_version_one_row"),
    )


def downgrade() -> None:
    op.drop_table("incident_rules_version")
    op.drop_table("incident_rules")
