"""Fingerprint judgements: the fingerprint files' version each stored verdict was judged with.

Written by ``censorwatch db rejudge``; a measurement without a row here is judged as its
probe judged it (the version is in its analysis).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fingerprint_judgements",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("fingerprints_version", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fingerprint_judgements")
