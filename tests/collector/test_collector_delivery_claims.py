"""Webhook delivery records a result only while its claim holds, and a delivery timeout
that is not shorter than the lease is refused at start."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from collector.alerting import delivery, outbox
from collector.config import ConfigError, resolve
from collector.store import migrate, schema
from collector.store import subscribers as subscriberstore
from collector.store.db import Database
from collector.store.subscribers import NewSubscriber


async def test_a_late_result_after_the_lease_ran_out_records_nothing(db: Database) -> None:
    # The store alone (``db``): a running collector's own deliverer, ticking every second on
    # the real clock, would claim the row once the short lease ran out, before the second claim.
    now = dt.datetime.now(dt.UTC)

    async def prepare(connection: object) -> subscriberstore.Subscriber:
        made = await subscriberstore.add(connection, NewSubscriber("https://x.test/"), now)  # type: ignore[arg-type]
        row = {
            "id": "msg_1", "subscriber_id": made.id, "incident_id": "i", "change_kind": "opened",
            "content_type": "application/json", "payload": b"{}", "attempts": 0,
            "next_attempt_at": now, "status": "pending", "last_error": None,
            "created_at": now, "delivered_at": None,
        }  # fmt: skip
        await outbox.add(connection, [row])  # type: ignore[arg-type]
        return made

    subscriber = await db.transaction(prepare)
    lease = dt.timedelta(seconds=1)
    [slow] = await db.transaction(lambda c: outbox.claim(c, db, now, lease, 10))
    later = now + dt.timedelta(seconds=5)  # the slow replica's lease has run out
    [fast] = await db.transaction(lambda c: outbox.claim(c, db, later, lease, 10))
    failed = delivery.Attempt(503, None, "HTTP 503")
    assert await delivery.record(db, subscriber, fast, failed, random.Random(1)) == "retried"
    done = delivery.Attempt(200, None, None)
    assert await delivery.record(db, subscriber, slow, done, random.Random(1)) == "lost_claim"
    async with db.reading() as connection:
        row = (await connection.execute(select(schema.outbox))).one()
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 503")


@pytest.mark.parametrize(("timeout", "lease"), [("60", "60"), ("90", "60")])
def test_a_timeout_not_shorter_than_the_lease_is_refused(timeout: str, lease: str) -> None:
    env = {"CENSORWATCH_DELIVERY_TIMEOUT_SECONDS": timeout}
    with pytest.raises(ConfigError) as caught:
        resolve(None, {**env, "CENSORWATCH_DELIVERY_LEASE_SECONDS": lease}, {})
    assert caught.value.key == "delivery_timeout_seconds"
    assert "lease" in str(caught.value)


def test_the_defaults_and_a_shorter_timeout_are_fine() -> None:
    assert (
        resolve(None, {}, {}).delivery_timeout_seconds
        < resolve(None, {}, {}).delivery_lease_seconds
    )
    resolve(None, {"CENSORWATCH_DELIVERY_TIMEOUT_SECONDS": "5"}, {})


async def test_a_row_another_process_claimed_after_the_select_is_not_claimed_again(
    tmp_path: Path,
) -> None:
    """On SQLite the claiming SELECT reads outside the write (no row locks), so another
    process can claim the same rows before this one writes its lease: the write must see it."""
    path = tmp_path / "outbox.db"
    db = Database(f"sqlite:///{path}")
    await migrate.upgrade(db)
    now = dt.datetime.now(dt.UTC)
    lease = dt.timedelta(seconds=60)

    async def prepare(connection: Any) -> None:
        made = await subscriberstore.add(connection, NewSubscriber("https://x.test/"), now)
        await outbox.add(connection, [_row("msg_1", made.id, now)])

    await db.transaction(prepare)
    other = now + dt.timedelta(seconds=1)

    def other_process_claims_first(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE OUTBOX"):
            with sqlite3.connect(path) as rival:  # another replica's own connection
                rival.execute(
                    "UPDATE outbox SET next_attempt_at = ? WHERE id = 'msg_1'",
                    ((other + lease).strftime("%Y-%m-%d %H:%M:%S.%f"),),
                )

    event.listen(db.engine.sync_engine, "before_cursor_execute", other_process_claims_first)
    claimed = await db.transaction(lambda c: outbox.claim(c, db, now, lease, 10))
    event.remove(db.engine.sync_engine, "before_cursor_execute", other_process_claims_first)
    assert claimed == []
    await db.close()


def _row(message_id: str, subscriber_id: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": message_id, "subscriber_id": subscriber_id, "incident_id": "i",
        "change_kind": "opened", "content_type": "application/json", "payload": b"{}",
        "attempts": 0, "next_attempt_at": now, "status": "pending", "last_error": None,
        "created_at": now, "delivered_at": None,
    }  # fmt: skip
