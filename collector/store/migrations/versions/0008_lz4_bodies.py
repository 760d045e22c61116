"""Measurement bodies compressed with lz4 instead of pglz on PostgreSQL.

A body of a few KB is over the TOAST threshold, so every insert compresses it. Copying
10,000 bodies of 2.6 KB cost PostgreSQL about 98 µs of CPU a row with pglz and 50-65 µs with
lz4, for a table about 15 % larger (17 against 19-20 MiB); the ingest path's insert gained
about as much. Only rows written from now on
use lz4; older rows stay readable as they are. A server built without lz4 keeps pglz.
SQLite stores bodies uncompressed either way.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_HAS_LZ4 = text(
    "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
)


def _set_compression(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not bind.scalar(_HAS_LZ4):
        return
    op.execute(f"ALTER TABLE measurements ALTER COLUMN body SET COMPRESSION {method}")


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
