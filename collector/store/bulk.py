"""An ingest batch written to PostgreSQL in one statement.

The measurements go in with ``INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING``
(one round trip, no per-row SQL), and the same statement, through data-modifying CTEs,
adds to the rollups exactly the rows that insert stored and marks the probe seen. One
statement is one transaction: nothing waits between statements with locks held, and a
replayed batch stores and counts nothing twice.

Rows arrive sorted by id and ``unnest`` keeps their order, so two batches with overlapping
ids wait on each other's ids in the same order; rollup keys are written sorted too, one
table after another in a fixed order. Neither can deadlock, and a deadlock anyway (with
another writer) is retried by ``Database.autocommit``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Final

from collector.store import rollups, schema
from collector.store.db import Database

COLUMNS: Final = tuple(c.name for c in schema.measurements.columns if c.name != "seq")
_TYPES: Final = {
    "id": "uuid", "asn": "bigint", "control": "boolean", "start_time": "timestamptz",
    "received_at": "timestamptz", "body": "bytea", "confidence": "float8",
    "hour": "bigint", "counted": "boolean",
}  # fmt: skip
# What the rollups need of a row: the key columns, unnested a second time without the body.
_COUNTED: Final = ("id", "hour", "service", "cc", "asn", "verdict", "control", "methods")


def _array(name: str, position: int) -> str:
    return f"${position}::{_TYPES.get(name, 'text')}[]"


def _arrays(names: Sequence[str], positions: dict[str, int]) -> str:
    return ", ".join(_array(name, positions[name]) for name in names)


def insert_statement() -> str:
    """Just the insert, for writers inside a transaction of their own: the ids it stored."""
    positions = {name: i for i, name in enumerate(COLUMNS, 1)}
    return (
        f"INSERT INTO measurements ({', '.join(COLUMNS)}) "
        f"SELECT * FROM unnest({_arrays(COLUMNS, positions)}) "
        "ON CONFLICT (id) DO NOTHING RETURNING id"
    )


def _statement() -> str:
    names = (*COLUMNS, "hour", "counted")
    positions = {name: i for i, name in enumerate(names, 1)}
    now, probe, before = len(names) + 1, len(names) + 2, len(names) + 3
    counted = (*_COUNTED, "counted")
    ctes = [
        f"stored AS ({insert_statement()})",
        f"fresh AS (SELECT b.* FROM unnest({_arrays(counted, positions)}) "
        f"AS b({', '.join(counted)}) JOIN stored USING (id) WHERE b.counted)",
        *(f"r{i} AS ({sql})" for i, sql in enumerate(rollups.pg_upserts_from("fresh"))),
        f"seen AS (UPDATE probes SET last_seen_at = ${now} WHERE id = ${probe} "
        f"AND (last_seen_at IS NULL OR last_seen_at < ${before}))",
    ]
    return "WITH " + ", ".join(ctes) + " SELECT id FROM stored"


_STATEMENT: Final = _statement()


async def write(
    db: Database,
    rows: Sequence[dict[str, Any]],
    counted: Sequence[bool],
    seen: tuple[str, dt.datetime, dt.timedelta] | None,
) -> frozenset[uuid.UUID]:
    """Store ``rows`` (sorted by id), count those flagged in ``counted`` that were new, and
    mark probe ``seen[0]`` seen at ``seen[1]`` unless it was within ``seen[2]``; returns
    the ids stored."""
    columns: list[list[Any]] = [[row[name] for row in rows] for name in COLUMNS]
    columns.append([rollups.hour_of(row["start_time"]) for row in rows])
    columns.append(list(counted))
    probe, now, interval = seen if seen is not None else (None, None, dt.timedelta(0))
    args = [*columns, now, probe, now - interval if now is not None else None]

    async def work(driver: Any) -> frozenset[uuid.UUID]:
        return frozenset(record[0] for record in await driver.fetch(_STATEMENT, *args))

    return await db.autocommit(work)
