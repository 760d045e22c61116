"""Censor hops: where each located blocked endpoint's censoring hop sits, per network.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "censor_hops",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("endpoint", sa.Integer(), primary_key=True),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("cc", sa.String(2), nullable=False),
        sa.Column("asn", sa.BigInteger(), nullable=False),
        sa.Column("hop", sa.Integer(), nullable=False),
        sa.Column("router_asn", sa.BigInteger(), nullable=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_censor_hops_cc_start", "censor_hops", ["cc", "start_time"])


def downgrade() -> None:
    op.drop_index("ix_censor_hops_cc_start", table_name="censor_hops")
    op.drop_table("censor_hops")
