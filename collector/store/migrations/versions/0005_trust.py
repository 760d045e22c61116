"""Trust: a commit-ordered detector cursor, enrolment groups, vetting, unconfirmed opt-in,
and the collector's own signing secret for network attestations.

``measurements.seq`` orders rows for the detector by commit, not by a clock: on PostgreSQL
it is the inserting transaction's id (``pg_current_xact_id()``) and the detector reads only
below the oldest transaction still running, so a slow transaction's rows are read when it
commits; on SQLite, whose writers are serialised, the ingest transaction numbers its rows
after the last one. Existing rows get 0 (already read) or 1 (newer than the detector's old
cursor, still to read), and the cursor moves to sequence 0.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)
_LAST_UUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    default = sa.text("(pg_current_xact_id()::text::bigint)") if postgres else None
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True, server_default=default))
    op.execute(
        "UPDATE measurements SET seq = CASE WHEN received_at <= (SELECT cursor_received_at "
        "FROM detector_state WHERE id = 1) THEN 0 ELSE 1 END"
    )
    op.create_index("ix_measurements_seq_id", "measurements", ["seq", "id"])
    with op.batch_alter_table("detector_state") as batch:
        batch.add_column(sa.Column("cursor_seq", sa.BigInteger(), nullable=True))
    op.execute(
        f"UPDATE detector_state SET cursor_seq = 0, cursor_id = '{_LAST_UUID}' "
        "WHERE cursor_received_at IS NOT NULL"
    )
    with op.batch_alter_table("probes") as batch:
        batch.add_column(sa.Column("enrolment", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("vetted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(
            sa.Column("unconfirmed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # the attestation key lives in collector_keys (0003), beside the pseudonym key


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("unconfirmed")
    with op.batch_alter_table("probes") as batch:
        batch.drop_column("vetted")
        batch.drop_column("enrolment")
    with op.batch_alter_table("detector_state") as batch:
        batch.drop_column("cursor_seq")
    op.drop_index("ix_measurements_seq_id", "measurements")
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("seq")
