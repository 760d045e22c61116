"""Event sources: calendars and feeds the collector polls; events keep their series and source.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"  # alters the events table that 0002 creates
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("series", sa.String(128), nullable=True))
        batch.add_column(sa.Column("source_id", sa.String(64), nullable=True))
    op.create_index("ix_events_series_start", "events", ["series", "start"])
    op.create_index("ix_events_source_start", "events", ["source_id", "start"])
    op.create_table(
        "event_sources",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("format", sa.String(8), nullable=True),  # None: sniffed on each fetch
        sa.Column("cc", sa.String(2), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("keywords", sa.Text(), nullable=False),  # JSON [[keyword, kind], …]
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.String(512), nullable=True),
        sa.Column("last_modified", sa.String(64), nullable=True),
        sa.Column("next_poll_at", _TZ, nullable=False),
        sa.Column("claimed_until", _TZ, nullable=True),
        sa.Column("last_attempt_at", _TZ, nullable=True),
        sa.Column("last_success_at", _TZ, nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("last_error_at", _TZ, nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_index("ix_event_sources_next_poll", "event_sources", ["next_poll_at"])


def downgrade() -> None:
    op.drop_index("ix_event_sources_next_poll", "event_sources")
    op.drop_table("event_sources")
    op.drop_index("ix_events_source_start", "events")
    op.drop_index("ix_events_series_start", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("source_id")
        batch.drop_column("series")
