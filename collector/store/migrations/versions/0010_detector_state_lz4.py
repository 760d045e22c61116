"""The detector's state compressed with lz4 on PostgreSQL.

The state is one JSON document rewritten every cycle: at 10,000 probes x 20 services it is
about 18 MB, and PostgreSQL's default TOAST compression (pglz) took 0.8 s of the server's
time per write where lz4 takes 0.13 s (PostgreSQL 14 and later, when built with lz4; without
it the column keeps the default). SQLite stores it as it did.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SET = """
DO $$ BEGIN
    EXECUTE 'ALTER TABLE detector_state ALTER COLUMN state SET COMPRESSION {method}';
EXCEPTION WHEN OTHERS THEN NULL;  -- before PostgreSQL 14, or built without lz4
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_SET.format(method="lz4"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_SET.format(method="default"))
