"""Secrets the collector makes for itself once and every replica shares, kept in the database."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from collector.auth import utc_now
from collector.store import schema
from collector.store.db import Database


async def shared_key(db: Database, name: str) -> bytes:
    """The key called ``name``, created by whichever replica asks first."""
    k = schema.collector_keys
    async with db.writing() as connection:
        await connection.execute(
            db.insert(k)
            .values(name=name, value=secrets.token_hex(32), created_at=utc_now())
            .on_conflict_do_nothing()
        )
        value = (await connection.execute(select(k.c.value).where(k.c.name == name))).scalar_one()
    return bytes.fromhex(value)
