"""Feed health remembers how far each source's clock is off ours (see feeds/clock.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feed_health") as batch:
        batch.add_column(sa.Column("clock_skew_s", sa.Float, nullable=True))
        batch.add_column(sa.Column("expiry_lag_s", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed_health") as batch:
        batch.drop_column("expiry_lag_s")
        batch.drop_column("clock_skew_s")
