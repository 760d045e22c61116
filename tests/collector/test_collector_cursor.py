"""The detector's cursor follows commit order: a measurement committed late is still judged,
once. Before revision 0002_trust the cursor was (received_at, id), and a slow ingest
transaction's rows, stamped before rows another transaction committed first, were skipped.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from collector.alerting import detection
from collector.alerting.context import Windows
from collector.ingest.measurements import insert_rows
from collector.store import migrate, schema
from collector.store.db import Database

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
