"""An ingest batch written to PostgreSQL: by COPY when every id is new, else in one statement.

The common batch, all new, goes in by ``COPY`` (what a bulk load costs, half of an
``INSERT … ON CONFLICT``), followed by one statement that adds the batch's tallies to the
rollups (a few dozen keys, counted by the collector, where unnesting and grouping every row
cost PostgreSQL half as much again as the COPY) and marks the probe seen, in one
transaction. A batch holding any stored id (a re-sent batch,
or one racing another with the same ids) is written instead with one ``INSERT … SELECT
FROM unnest(arrays) ON CONFLICT DO NOTHING`` whose data-modifying CTEs count exactly the
rows it stored and mark the probe seen: one statement, one transaction. Either way a
replayed batch stores and counts nothing twice.

Rows arrive sorted by id and both COPY and ``unnest`` keep their order, so two batches with
overlapping ids wait on each other's ids in the same order; rollup keys are written sorted,
one table after another in a fixed order. Neither can deadlock, and a deadlock anyway (with
another writer) is retried by ``Database.autocommit``, whose connection this is given.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.store import rollups, schema
from collector.store.db import driver_of

COLUMNS: Final = tuple(c.name for c in schema.measurements.columns if c.name != "seq")


class Row(NamedTuple):
    """A measurement as stored, in the column order COPY takes (``seq``: the server's)."""

    id: uuid.UUID
    probe_id: str
    service: str
    cc: str
    asn: int
    control: bool
    start_time: dt.datetime
    received_at: dt.datetime
    probe_verdict: str
    verdict: str
    methods: str  # space-separated, each once
    rule: str
    rules_version: str
    flags: str  # comma-separated
    body: bytes
    confidence: float


assert Row._fields == COLUMNS, "bulk.Row must follow schema.measurements"
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


def _counting_ctes(fresh: str, first: int) -> list[str]:
    """The rollup upserts from ``fresh`` and the probe's last_seen, with that update's
    parameters numbered from ``first``."""
    now, probe, before = first, first + 1, first + 2
    return [
        *(f"r{i} AS ({sql})" for i, sql in enumerate(rollups.pg_upserts_from("fresh"))),
        f"seen AS (UPDATE probes SET last_seen_at = ${now} WHERE id = ${probe} "
        f"AND (last_seen_at IS NULL OR last_seen_at < ${before}))",
    ]


def _statement() -> str:
    """Insert what is new, count what was inserted: for a batch that may hold stored ids."""
    names = (*COLUMNS, "hour", "counted")
    positions = {name: i for i, name in enumerate(names, 1)}
    counted = (*_COUNTED, "counted")
    ctes = [
        f"stored AS ({insert_statement()})",
        f"fresh AS (SELECT b.* FROM unnest({_arrays(counted, positions)}) "
        f"AS b({', '.join(counted)}) JOIN stored USING (id) WHERE b.counted)",
        *_counting_ctes("fresh", len(names) + 1),
    ]
    return "WITH " + ", ".join(ctes) + " SELECT id FROM stored"


def _counting_statement() -> str:
    """Add a batch that went in whole to the rollups by its tallies, and mark it seen."""
    upserts, parameters = rollups.pg_tally_upserts()
    now, probe, before = parameters + 1, parameters + 2, parameters + 3
    ctes = [
        *(f"r{i} AS ({sql})" for i, sql in enumerate(upserts)),
        f"seen AS (UPDATE probes SET last_seen_at = ${now} WHERE id = ${probe} "
        f"AND (last_seen_at IS NULL OR last_seen_at < ${before}))",
    ]
    return "WITH " + ", ".join(ctes) + " SELECT 1"


_STATEMENT: Final = _statement()
_COUNTING: Final = _counting_statement()
_ANY_STORED: Final = "SELECT EXISTS (SELECT 1 FROM measurements WHERE id = ANY($1::uuid[]))"


async def _copy(driver: Any, rows: Sequence[Row], counting: list[Any], seen: list[Any]) -> bool:
    """The batch by COPY and its counts, in one transaction; False, with nothing written,
    when some id is stored already (a re-sent batch, or one racing another with the same
    ids: that one's COPY waits for this commit, then fails)."""
    try:
        async with driver.transaction():
            if await driver.fetchval(_ANY_STORED, [row.id for row in rows]):
                return False
            await driver.copy_records_to_table("measurements", records=rows, columns=COLUMNS)
            await driver.execute(_COUNTING, *counting, *seen)
    except asyncpg.UniqueViolationError:
        return False
    return True


async def write(
    connection: AsyncConnection,
    rows: Sequence[Row],
    counted: Sequence[bool],
    tally: rollups.Tally,
    seen: tuple[str, dt.datetime, dt.timedelta] | None,
) -> frozenset[uuid.UUID]:
    """Store ``rows`` (sorted by id), count those flagged in ``counted`` that were new, and
    mark probe ``seen[0]`` seen at ``seen[1]`` unless it was within ``seen[2]``; returns
    the ids stored. ``tally`` is what the counted rows add to the rollups, all of them new.

    A batch of new measurements goes in by COPY, which costs PostgreSQL about half what
    ``INSERT … ON CONFLICT`` does, and is counted by its tallies; one with any stored id
    takes the single statement that skips those and counts what it stored.
    """
    probe, now, interval = seen if seen is not None else (None, None, dt.timedelta(0))
    touch = [now, probe, now - interval if now is not None else None]
    driver = await driver_of(connection)
    if await _copy(driver, rows, rollups.pg_tally_arguments(tally), touch):
        return frozenset(row.id for row in rows)
    columns = [list(column) for column in zip(*rows, strict=True)]
    by_name = dict(zip(COLUMNS, columns, strict=True))
    hours = [rollups.hour_of(start) for start in by_name["start_time"]]
    args = [*columns, hours, list(counted), *touch]
    return frozenset(record[0] for record in await driver.fetch(_STATEMENT, *args))
