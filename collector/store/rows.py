"""The statements every table with an ``id`` is read and written by: one row, insert, delete,
and "column equals the value given" filters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, delete, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection


def equal_where_given(table: Table, **wanted: object) -> list[ColumnElement[bool]]:
    """``column == value`` for each value given; a filter left out (None) matches all."""
    return [table.c[name] == value for name, value in wanted.items() if value is not None]


async def by_id(connection: AsyncConnection, table: Table, ident: str) -> RowMapping | None:
    query = select(table).where(table.c.id == ident)
    return (await connection.execute(query)).mappings().first()


async def insert_row(connection: AsyncConnection, table: Table, row: dict[str, Any]) -> RowMapping:
    """Insert ``row`` and read it back as stored."""
    await connection.execute(table.insert().values(**row))
    stored = await by_id(connection, table, row["id"])
    assert stored is not None
    return stored


async def delete_by_id(connection: AsyncConnection, table: Table, ident: str) -> bool:
    """Whether there was a row with this id to delete."""
    result = await connection.execute(delete(table).where(table.c.id == ident))
    return bool(result.rowcount)
