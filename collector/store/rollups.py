"""Hourly counts per service, country, ASN and verdict, kept in step with measurements.

Counts are added in the ingest transaction, for exactly the rows that transaction
inserted, so a replayed batch adds nothing and a rollup never disagrees with the raw rows.
Measurements whose clocks ran ahead (flagged ``future``) are stored but not counted: their
hour is not to be believed. Keys are written in sorted order so concurrent transactions
lock rows in the same order and cannot deadlock on each other.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.store import schema
from collector.store.db import Database, asyncpg_in_transaction, driver_of

EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def hour_of(moment: dt.datetime) -> int:
    """Whole hours since the Unix epoch."""
    return int((moment - EPOCH).total_seconds() // 3600)


def hour_start(hour: int) -> dt.datetime:
    return EPOCH + dt.timedelta(hours=hour)


# Keys are tuples: every batch hashes, counts and sorts a few dozen of each, which a
# tuple does in C and a dataclass in Python (several times slower at batches of 100).
class RollupKey(NamedTuple):
    hour: int
    service: str
    cc: str
    asn: int
    verdict: str
    control: bool


class CountryKey(NamedTuple):
    hour: int
    service: str
    cc: str
    verdict: str
    control: bool


class TotalKey(NamedTuple):
    service: str
    cc: str
    asn: int
    verdict: str


class MethodKey(NamedTuple):
    hour: int
    service: str
    cc: str
    asn: int
    verdict: str
    method: str


@dataclass(frozen=True)
class Contribution:
    """What one stored measurement adds to the rollups."""

    key: RollupKey
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Tally:
    counts: dict[RollupKey, int]
    countries: dict[CountryKey, int]
    methods: dict[MethodKey, int]
    totals: dict[TotalKey, int]

    def __bool__(self) -> bool:
        return bool(self.counts)


def tally(contributions: Iterable[Contribution]) -> Tally:
    return tally_keys(Counter((item.key, item.methods) for item in contributions))


def tally_keys(seen: Counter[tuple[RollupKey, tuple[str, ...]]]) -> Tally:
    """The tally of so many rows with each key and methods: a batch of a thousand rows has
    a few dozen distinct ones, so the keys of the other tables are made once each."""
    counts: Counter[RollupKey] = Counter()
    methods: Counter[MethodKey] = Counter()
    for (k, found), n in seen.items():
        counts[k] += n
        for method in dict.fromkeys(found):
            methods[MethodKey(k.hour, k.service, k.cc, k.asn, k.verdict, method)] += n
    countries: Counter[CountryKey] = Counter()
    totals: Counter[TotalKey] = Counter()
    for k, n in counts.items():
        countries[CountryKey(k.hour, k.service, k.cc, k.verdict, k.control)] += n
        totals[TotalKey(k.service, k.cc, k.asn, k.verdict)] += n
    return Tally(dict(counts), dict(countries), dict(methods), dict(totals))


def _upsert(db: Database, table: Table) -> Any:
    statement = db.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[column.name for column in table.primary_key.columns],
        set_={"count": table.c.count + statement.excluded["count"]},
    )


_TABLES: Final = (
    schema.rollups,
    schema.rollup_countries,
    schema.rollup_methods,
    schema.rollup_totals,
)


def _pg_upserts(tables: tuple[Table, ...]) -> tuple[list[str], int]:
    """An upsert of each table from arrays of its columns (``count`` last), the parameters
    numbered from 1 across them; and how many parameters they take."""
    parts: list[str] = []
    first = 1
    for table in tables:
        names = [c.name for c in table.columns]
        keys = [c.name for c in table.primary_key.columns]
        types = {"hour": "bigint", "asn": "bigint", "count": "bigint", "control": "boolean"}
        arrays = ", ".join(f"${i}::{types.get(n, 'text')}[]" for i, n in enumerate(names, first))
        first += len(names)
        parts.append(
            f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE "
            f"SET count = {table.name}.count + excluded.count"
        )
    return parts, first - 1


def _pg_upsert_all_sql(tables: tuple[Table, ...]) -> str:
    """The upserts of several rollup tables as one statement (data-modifying CTEs)."""
    *ctes, last = _pg_upserts(tables)[0]
    if not ctes:
        return last
    return "WITH " + ", ".join(f"u{i} AS ({sql})" for i, sql in enumerate(ctes)) + " " + last


def pg_tally_upserts() -> tuple[list[str], int]:
    """Upserts of every rollup table from a tally's arrays (``pg_tally_arguments``), for a
    statement of ``collector.store.bulk``, and how many parameters they take."""
    return _pg_upserts(_TABLES)


def pg_tally_arguments(counts: Tally) -> list[list[Any]]:
    """A tally as the arrays ``pg_tally_upserts`` takes, each table's keys sorted (the
    order concurrent writers lock them in, as ``add`` writes them)."""
    arguments: list[list[Any]] = []
    for table, part in zip(_TABLES, _parts(counts), strict=True):
        ordered = sorted(part.items())
        for column in table.columns:
            if column.name == "count":
                arguments.append([n for _, n in ordered])
            else:
                arguments.append([getattr(k, column.name) for k, _ in ordered])
    return arguments


def _parts(counts: Tally) -> tuple[dict[Any, int], ...]:
    """The tally's counts in the order of ``_TABLES``."""
    return (counts.counts, counts.countries, counts.methods, counts.totals)


_PG_UPSERT_ALL: dict[tuple[str, ...], str] = {}


def pg_upserts_from(source: str) -> list[str]:
    """Upserts of every rollup table counting the rows of ``source``, a relation with the
    columns hour, service, cc, asn, verdict, control and methods (space-separated, each
    once): the parts of a batch's single statement (``collector.store.bulk``). Keys go in
    sorted order, as ``add`` writes them."""
    parts: list[str] = []
    for table in _TABLES:
        keys = ", ".join(c.name for c in table.primary_key.columns)
        rows = source
        if "method" in table.c:
            rows += f" CROSS JOIN LATERAL unnest(string_to_array({source}.methods, ' ')) AS method"
        parts.append(
            f"INSERT INTO {table.name} ({keys}, count) SELECT {keys}, count(*) FROM {rows} "
            f"GROUP BY {keys} ORDER BY {keys} "
            f"ON CONFLICT ({keys}) DO UPDATE SET count = {table.name}.count + excluded.count"
        )
    return parts


async def _add_postgresql(
    connection: AsyncConnection, parts: list[tuple[Table, list[dict[str, Any]]]]
) -> None:
    """Every rollup table in one round trip, each table's keys in sorted order."""
    tables = tuple(table for table, _ in parts)
    names = tuple(table.name for table in tables)
    if names not in _PG_UPSERT_ALL:
        _PG_UPSERT_ALL[names] = _pg_upsert_all_sql(tables)
    args = [[row[c.name] for row in rows] for table, rows in parts for c in table.columns]
    driver = await asyncpg_in_transaction(connection)
    await driver.execute(_PG_UPSERT_ALL[names], *args)


async def add(connection: AsyncConnection, db: Database, counts: Tally) -> None:
    todo = [
        (table, [{**k._asdict(), "count": n} for k, n in sorted(part.items())])
        for table, part in zip(_TABLES, _parts(counts), strict=True)
        if part
    ]
    if not todo:
        return
    if db.dialect == "postgresql":
        await _add_postgresql(connection, todo)
        return
    for table, rows in todo:
        await connection.execute(_upsert(db, table), rows)


@dataclass(frozen=True)
class ContextRow:
    service: str
    hour: int
    asn: int
    control: bool
    verdict: str
    count: int


_PG_CONTEXT: Final = (
    "SELECT service, hour, asn, control, verdict, sum(count) FROM rollups "
    "WHERE service = ANY($1::text[]) AND hour BETWEEN $2 AND $3 "
    "GROUP BY service, hour, asn, control, verdict"
)


_PG_VANTAGES: Final = (
    "WITH cells AS (SELECT DISTINCT * FROM unnest($1::text[], $2::bigint[]) AS c(service, hour)) "
    "SELECT c.service, c.hour, r.asn, r.control, "
    "coalesce(sum(r.count) FILTER (WHERE r.verdict = 'ok'), 0), "
    "coalesce(sum(r.count) FILTER (WHERE r.verdict = ANY($4::text[])), 0) "
    "FROM cells c JOIN rollups r ON r.service = c.service "
    "AND r.hour BETWEEN c.hour - $3 AND c.hour + $3 "
    "GROUP BY c.service, c.hour, r.asn, r.control"
)


async def vantage_rows(
    connection: AsyncConnection,
    cells: Sequence[tuple[str, int]],
    hours: int,
    failing: Iterable[str],
) -> list[tuple[str, int, int, bool, int, int]]:
    """PostgreSQL: for each (service, hour) cell, the counts ``ok`` and ``failing`` per
    (ASN, control) within ``hours`` either side, summed by the database: a batch spread
    over a week (a drained spool) reads a row per cell and group, not every rollup row of
    the week. ``connection`` must be in autocommit or already in its transaction."""
    driver = await driver_of(connection)
    services, starts = [c[0] for c in cells], [c[1] for c in cells]
    found = await driver.fetch(_PG_VANTAGES, services, starts, hours, sorted(failing))
    return [(s, h, a, c, int(ok), int(bad)) for s, h, a, c, ok, bad in found]


async def context_rows(
    connection: AsyncConnection, services: Sequence[str], first_hour: int, last_hour: int
) -> list[ContextRow]:
    """Verdict counts per (service, hour, ASN, control) in the window, for reanalysis.

    On PostgreSQL one fixed statement straight through asyncpg, which keeps it prepared
    (an ``IN`` list has a text per length, prepared again and again): the ingest path
    asks this for every batch. ``connection`` must then be in autocommit or already in
    its transaction."""
    if connection.dialect.name == "postgresql":
        driver = await driver_of(connection)
        found = await driver.fetch(_PG_CONTEXT, sorted(set(services)), first_hour, last_hour)
        return [ContextRow(s, h, a, c, v, int(n)) for s, h, a, c, v, n in found]
    r = schema.rollups
    query = (
        select(r.c.service, r.c.hour, r.c.asn, r.c.control, r.c.verdict, func.sum(r.c.count))
        .where(r.c.service.in_(sorted(set(services))))
        .where(r.c.hour.between(first_hour, last_hour))
        .group_by(r.c.service, r.c.hour, r.c.asn, r.c.control, r.c.verdict)
    )
    result = await connection.execute(query)
    return [ContextRow(s, h, a, bool(c), v, int(n)) for s, h, a, c, v, n in result]
