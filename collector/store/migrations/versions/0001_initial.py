"""Initial schema: measurements, rollups, probes, enrolment and admin tokens.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _measurements()
    _rollups()
    _probes()


def _measurements() -> None:
    op.create_table(
        "measurements",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("probe_id", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("cc", sa.String(2), nullable=False),
        sa.Column("asn", sa.BigInteger(), nullable=False),
        sa.Column("control", sa.Boolean(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("probe_verdict", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("methods", sa.String(512), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("rules_version", sa.String(16), nullable=False),
        sa.Column("flags", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
    )
    for name, columns in (
        ("ix_measurements_start_id", ["start_time", "id"]),
        ("ix_measurements_service_start_id", ["service", "start_time", "id"]),
        ("ix_measurements_cc_start_id", ["cc", "start_time", "id"]),
        ("ix_measurements_asn_start_id", ["asn", "start_time", "id"]),
    ):
        op.create_index(name, "measurements", columns)


def _rollups() -> None:
    op.create_table(
        "rollups",
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("service", sa.String(64), primary_key=True),
        sa.Column("cc", sa.String(2), primary_key=True),
        sa.Column("asn", sa.BigInteger(), primary_key=True),
        sa.Column("verdict", sa.String(16), primary_key=True),
        sa.Column("control", sa.Boolean(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_rollups_service_hour", "rollups", ["service", "hour"])
    op.create_index("ix_rollups_cc_service_hour", "rollups", ["cc", "service", "hour"])
    op.create_table(
        "rollup_countries",
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("service", sa.String(64), primary_key=True),
        sa.Column("cc", sa.String(2), primary_key=True),
        sa.Column("verdict", sa.String(16), primary_key=True),
        sa.Column("control", sa.Boolean(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_rollup_countries_cc_hour", "rollup_countries", ["cc", "hour"])
    op.create_table(
        "rollup_totals",
        sa.Column("service", sa.String(64), primary_key=True),
        sa.Column("cc", sa.String(2), primary_key=True),
        sa.Column("asn", sa.BigInteger(), primary_key=True),
        sa.Column("verdict", sa.String(16), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "rollup_methods",
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("service", sa.String(64), primary_key=True),
        sa.Column("cc", sa.String(2), primary_key=True),
        sa.Column("asn", sa.BigInteger(), primary_key=True),
        sa.Column("verdict", sa.String(16), primary_key=True),
        sa.Column("method", sa.String(32), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_rollup_methods_cc_hour", "rollup_methods", ["cc", "hour"])


def _probes() -> None:
    op.create_table(
        "probes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("control", sa.Boolean(), nullable=False),
        sa.Column("cc", sa.String(2), nullable=True),
        sa.Column("asn", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "enrolment_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("uses_left", sa.Integer(), nullable=True),
        sa.Column("control", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "admin_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "admin_tokens",
        "enrolment_tokens",
        "probes",
        "rollup_methods",
        "rollup_totals",
        "rollup_countries",
        "rollups",
        "measurements",
    ):
        op.drop_table(table)
