"""The detector's read of new rows from a large table: the statement ``detection.read_new``
sends (the cursor as a row comparison, ``(seq, id) > (x, y)``) beside the same read with
the cursor spelled with OR (``seq > x OR (seq = x AND id > y)``, what it sent before).

    python -m benchmarks.detector_read [--transactions 1000] [--rows 1000] [--new 10]

Fills ``measurements`` with ``--transactions`` commits of ``--rows`` rows each (small
bodies: the read never touches them), puts the cursor ``--new`` commits before the end,
and prints, for each form, PostgreSQL's execution time (``EXPLAIN ANALYZE``, median of 5),
its plan's scans, and the time to fetch the rows through asyncpg (median of 5). The
current form is the statement captured from a real ``read_new`` call, so it cannot drift
from what the detector asks.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import time
import uuid
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event

from benchmarks.collector_benchkit import upgrade
from collector.alerting import detection
from collector.store.bulk import COLUMNS
from collector.store.db import Database
from lab.harness.postgres import ThrowawayCluster

# The read as it was before the row comparison: the previous spelling, kept here only to
# be measured beside the current one.
_BEFORE = (
    "SELECT m.id, m.seq, m.probe_id, m.service, m.cc, m.asn, m.start_time, m.received_at, "
    "m.verdict, m.methods, m.confidence, m.control, m.flags, p.vetted, p.created_at, "
    "p.enrolment FROM measurements m LEFT OUTER JOIN probes p ON p.id = m.probe_id "
    "WHERE m.seq IS NOT NULL AND (m.seq > $1 OR (m.seq = $1 AND m.id > $2)) "
    "AND m.seq < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
    "ORDER BY m.seq, m.id LIMIT $3"
)


async def fill(url: str, transactions: int, rows: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO probes (id, token_hash, control, created_at) VALUES ('p', 'x', false, now())"
        )
        now = dt.datetime.now(dt.UTC)
        for _ in range(transactions):
            batch = [
                (uuid.uuid4(), "p", "telegram", "KZ", 9198, False, now, now, "ok", "ok", "dns",
                 "cw.keep", "2", "", b"{}", 1.0)
                for _ in range(rows)
            ]  # fmt: skip
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "measurements", records=batch, columns=COLUMNS
                )
        await connection.execute("ANALYZE measurements")
    finally:
        await connection.close()


def _scans(node: dict[str, object]) -> list[str]:
    found = [str(node["Node Type"])] if "Scan" in str(node["Node Type"]) else []
    if str(node["Node Type"]) == "Sort":
        found.append("Sort")
    for child in node.get("Plans", []):  # type: ignore[attr-defined]
        found += _scans(child)
    return found


async def current(url: str, cursor: detection.Cursor) -> tuple[str, list[Any]]:
    """The statement and parameters ``read_new`` sends for ``cursor``."""
    db = Database(url)
    captured: list[tuple[str, list[Any]]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM measurements" in statement:
            captured.append((statement, list(parameters)))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.reading() as connection:
            await detection.read_new(connection, cursor, dt.datetime.now(dt.UTC), postgresql=True)
    finally:
        await db.close()
    return captured[-1]


async def compare(url: str, new: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        seqs = [
            r[0] for r in await connection.fetch("SELECT DISTINCT seq FROM measurements ORDER BY 1")
        ]
        at = seqs[-new - 1]
        first = await connection.fetchval(
            "SELECT id FROM measurements WHERE seq = $1 ORDER BY id LIMIT 1", at
        )
        total = await connection.fetchval("SELECT count(*) FROM measurements")
        forms = {
            "read_new": await current(url, detection.Cursor(at, first)),
            "OR (before)": (_BEFORE, [at, first, detection.BATCH]),
        }
        for name, (sql, parameters) in forms.items():
            runs, plan = [], {}
            for _ in range(5):
                found = await connection.fetchval(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *parameters
                )
                plan = json.loads(found)[0]
                runs.append(plan["Execution Time"])
            statement = await connection.prepare(sql)
            fetches, count = [], 0
            for _ in range(5):
                started = time.perf_counter()
                count = len(await statement.fetch(*parameters))
                fetches.append(1e3 * (time.perf_counter() - started))
            print(
                f"  {name:<11}: {count} rows after the cursor of {total}: PostgreSQL "
                f"{statistics.median(runs):6.1f} ms, fetched in {statistics.median(fetches):6.1f} ms"
                f"   plan: {' + '.join(_scans(plan['Plan']))}"
            )
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--new", type=int, default=10, help="commits after the cursor")
    args = parser.parse_args()
    with ThrowawayCluster().running() as cluster:
        url = cluster.create_database("bench")
        asyncio.run(upgrade(url))
        asyncio.run(fill(url, args.transactions, args.rows))
        print(f"{args.transactions} commits of {args.rows} rows; cursor {args.new} commits back")
        asyncio.run(compare(url, args.new))


if __name__ == "__main__":
    main()
