"""Alerts: incidents, detector state, events, subscribers and the webhook outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
    op.create_index("ix_measurements_received_id", "measurements", ["received_at", "id"])
    _incidents()
    _events()
    _delivery()


def _incidents() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("service", sa.String(64), nullable=True),
        sa.Column("cc", sa.String(2), nullable=False),
        sa.Column("onset", _TZ, nullable=False),
        sa.Column("last_seen", _TZ, nullable=False),
        sa.Column("resolved_at", _TZ, nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_incidents_cc_service_onset", "incidents", ["cc", "service", "onset"])
    op.create_index("ix_incidents_resolved_at", "incidents", ["resolved_at"])
    op.create_table(
        "detector_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cursor_received_at", _TZ, nullable=True),
        sa.Column("cursor_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
    )


def _events() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("cc", sa.String(2), nullable=False),
        sa.Column("start", _TZ, nullable=False),
        sa.Column("end", _TZ, nullable=True),
        sa.Column("source_url", sa.String(2048), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_index("ix_events_cc_start", "events", ["cc", "start"])


def _delivery() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=True),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("previous_secret", sa.String(128), nullable=True),
        sa.Column("previous_expires_at", _TZ, nullable=True),
        sa.Column("countries", sa.Text(), nullable=False),
        sa.Column("services", sa.Text(), nullable=False),
        sa.Column("min_confidence", sa.Float(), nullable=False),
        sa.Column("send_resolutions", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(512), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("subscriber_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("change_kind", sa.String(32), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("delivered_at", _TZ, nullable=True),
    )
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    for table in ("outbox", "subscribers", "events", "detector_state", "incidents"):
        op.drop_table(table)
    op.drop_index("ix_measurements_received_id", "measurements")
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("confidence")
