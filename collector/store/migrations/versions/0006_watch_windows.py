"""Watch windows opened by hand (events' windows are derived from the events table).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watch_windows",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("cc", sa.String(2), nullable=False),
        sa.Column("start", _TZ, nullable=False),
        sa.Column("end", _TZ, nullable=False),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("services", sa.Text(), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_index("ix_watch_windows_cc_end", "watch_windows", ["cc", "end"])


def downgrade() -> None:
    op.drop_index("ix_watch_windows_cc_end", "watch_windows")
    op.drop_table("watch_windows")
