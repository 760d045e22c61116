"""The detector's cursor follows commit order: a measurement committed late is still judged,
once. Before revision 0002_trust the cursor was (received_at, id), and a slow ingest
transaction's rows, stamped before rows another transaction committed first, were skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event, select

from collector.alerting import detection
from collector.alerting.context import Windows
from collector.ingest.measurements import insert_rows
from collector.store import migrate, schema
from collector.store.db import Database, driver_of
from lab.harness.postgres import ThrowawayCluster

WINDOWS = Windows(dt.timedelta(hours=1), dt.timedelta(hours=6), dt.timedelta(days=365))


def row(received: dt.datetime, verdict: str = "ok") -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "probe_id": "probe-1", "service": "telegram", "cc": "KZ",
        "asn": 64500, "control": False, "start_time": received, "received_at": received,
        "probe_verdict": verdict, "verdict": verdict, "methods": "", "rule": "cw.keep",
        "rules_version": "2", "flags": "", "body": b"{}", "confidence": 1.0,
    }  # fmt: skip


async def test_a_row_committed_after_a_later_one_is_read_once(db_url: str, backend: str) -> None:
    db = Database(db_url)
    await migrate.upgrade(db)
    now = dt.datetime.now(dt.UTC)
    await detection.ensure_state_row(db, now)

    async def cycle() -> int:
        result = await detection.run_cycle(
            db, dt.datetime.now(dt.UTC), settle=dt.timedelta(0), windows=WINDOWS
        )
        assert result is not None
        return result.observations

    seen = 0
    if backend == "postgresql":
        slow = await db.engine.connect()
        transaction = await slow.begin()
        await slow.execute(schema.measurements.insert(), [row(now)])  # stamped first ...
        async with db.writing() as fast:
            await fast.execute(schema.measurements.insert(), [row(now + dt.timedelta(seconds=1))])
        seen += await cycle()  # ... while the later row is already committed
        await transaction.commit()  # ... and committed last
        await slow.close()
    else:  # SQLite's writers are serialised: the late commit cannot happen, the order holds
        async with db.writing() as connection:
            await insert_rows(connection, db, [row(now), row(now + dt.timedelta(seconds=1))])
    seen += await cycle()
    seen += await cycle()
    assert seen == 2
    await db.close()


async def test_rows_of_one_transaction_are_read_across_batches_once(
    db_url: str, backend: str
) -> None:
    """Rows committed together share a sequence number: the cursor's id half carries a
    read that stops inside such a group on from exactly where it stopped."""
    db = Database(db_url)
    await migrate.upgrade(db)
    now = dt.datetime.now(dt.UTC)
    for size in (3, 7):  # a transaction each (on PostgreSQL, one sequence number each)
        await _insert(db, [row(now) for _ in range(size)])
    cursor, read = detection.Cursor(), []
    postgresql = backend == "postgresql"
    async with db.reading() as connection:
        while True:
            found, cursor = await detection.read_new(
                connection, cursor, now, limit=4, postgresql=postgresql
            )
            if not found:
                break
            read += [o.measurement_id for o in found]
    async with db.reading() as connection:
        stored = (await connection.execute(select(schema.measurements.c.id))).scalars()
        assert sorted(read) == sorted(str(i) for i in stored)
    assert len(read) == len(set(read)) == 10
    await db.close()


async def test_the_read_starts_at_the_cursor_in_the_index(pg_cluster: ThrowawayCluster) -> None:
    """The cursor bound is an index condition, so a cycle reads the rows after the cursor
    and not every row before it as well: ``seq > x OR (seq = x AND id > y)`` was only a
    filter on a scan from the start of ``ix_measurements_seq_id``."""
    db = Database(pg_cluster.create_database("cw_cursor_plan"))
    await migrate.upgrade(db)
    now = dt.datetime.now(dt.UTC)
    await _insert(db, [row(now) for _ in range(3)])
    async with db.reading() as connection:
        first, cursor = await detection.read_new(connection, detection.Cursor(), now, limit=1)
    assert first
    assert cursor.seq is not None
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM measurements" in statement:
            captured.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    async with db.reading() as connection:
        await detection.read_new(connection, cursor, now, postgresql=True)
        ((statement, parameters),) = captured
        driver = await driver_of(connection)
        async with driver.transaction():
            await driver.execute("SET LOCAL enable_seqscan = off")
            await driver.execute("SET LOCAL enable_bitmapscan = off")
            plan = await driver.fetchval("EXPLAIN (FORMAT JSON) " + statement, *parameters)
    found = json.loads(plan) if isinstance(plan, str) else plan  # the dialect decodes json
    conditions = [n.get("Index Cond", "") for n in _nodes(found[0]["Plan"])]
    # The cursor's id is half of the bound: in the index condition, not in a filter after it.
    assert any(str(cursor.id) in c for c in conditions), conditions
    await db.close()


async def _insert(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.writing() as connection:
        await connection.execute(select(1))  # the transaction begun, for the bulk insert
        await insert_rows(connection, db, rows)


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)
