"""Apply the Alembic migrations, on start and by ``censorwatch db upgrade``.

Several replicas may start at once against one PostgreSQL; an advisory lock held for the
migration transaction lets one of them migrate while the others wait and then find the
schema current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from collector.store.db import Database

_LOCK_KEY: Final = 0x63656E736F72  # "censor"
SCRIPT_LOCATION: Final = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(db: Database) -> tuple[str | None, str | None]:
    """Migrate to the newest revision; returns the revisions before and after."""
    async with db.writing() as connection:
        if db.dialect == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        before = await connection.run_sync(_current)
        await connection.run_sync(_upgrade)
        after = await connection.run_sync(_current)
    return before, after
