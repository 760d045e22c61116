"""The webhook outbox: notifications written with the incident change, claimed for sending.

A row is one notification to one subscriber. Its id is the ``webhook-id`` every attempt
carries, so a receiver that saw it before can drop a repeat. Claiming moves the row's
``next_attempt_at`` past a lease in the claiming transaction (rows locked with ``FOR
UPDATE SKIP LOCKED`` on PostgreSQL), so replicas never send the same row at once, and a
replica that dies mid-send leaves the row to be sent again when the lease ends.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.correlation import Link, Stats
from alerts.model import Change
from alerts.webhooks import render
from collector.store import schema
from collector.store.db import Database
from collector.store.subscribers import Subscriber

_o: Final = schema.outbox
STATUSES: Final = ("pending", "delivered", "dead")


def new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def rows_for(
    change: Change,
    links: Sequence[Link],
    stats: Stats | None,
    subscribers: Sequence[Subscriber],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """One rendered notification per subscriber that wants this change."""
    rows = []
    for subscriber in subscribers:
        if not subscriber.wants(change):
            continue
        content_type, body = render(
            subscriber.format,  # type: ignore[arg-type]
            change,
            list(links),
            [stats] if stats is not None else [],
            chat_id=subscriber.chat_id,
        )
        rows.append(
            {
                "id": new_id(),
                "subscriber_id": subscriber.id,
                "incident_id": change.incident.id,
                "change_kind": change.kind,
                "content_type": content_type,
                "payload": body,
                "attempts": 0,
                "next_attempt_at": now,
                "status": "pending",
                "last_error": None,
                "created_at": now,
                "delivered_at": None,
            }
        )
    return rows


async def add(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await connection.execute(_o.insert(), list(rows))


@dataclass(frozen=True)
class Claimed:
    id: str
    subscriber_id: str
    content_type: str
    payload: bytes
    attempts: int
    lease_until: dt.datetime | None = None  # the claim: what this replica set, to check later


async def claim(
    connection: AsyncConnection, db: Database, now: dt.datetime, lease: dt.timedelta, limit: int
) -> list[Claimed]:
    due = (_o.c.status == "pending") & (_o.c.next_attempt_at <= now)
    query = (
        select(_o.c.id, _o.c.subscriber_id, _o.c.content_type, _o.c.payload, _o.c.attempts)
        .where(due)
        .order_by(_o.c.next_attempt_at, _o.c.id)
        .limit(limit)
    )
    if db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    until = now + lease
    found = [Claimed(*row, lease_until=until) for row in await connection.execute(query)]
    if not found:
        return []
    # The whole condition again: on SQLite the SELECT ran outside this write, and another
    # process may have claimed the same rows since; only the rows this write took are ours.
    take = update(_o).where(_o.c.id.in_([c.id for c in found]), due).values(next_attempt_at=until)
    taken = {row.id for row in await connection.execute(take.returning(_o.c.id))}
    return [c for c in found if c.id in taken]


def _still_ours(message: Claimed) -> Any:
    """The row as this claim left it: pending, same attempts, same lease.

    A replica whose lease ran out (a slow POST, a pause) finds the row re-claimed by
    another and records nothing, so its late result cannot overwrite the newer one.
    """
    condition = (_o.c.id == message.id) & (_o.c.status == "pending")
    condition &= _o.c.attempts == message.attempts
    if message.lease_until is not None:
        condition &= _o.c.next_attempt_at == message.lease_until
    return condition


async def delivered(connection: AsyncConnection, message: Claimed, now: dt.datetime) -> bool:
    """Record a delivery; False when the claim was lost (someone else owns the row now)."""
    result = await connection.execute(
        update(_o)
        .where(_still_ours(message))
        .values(status="delivered", delivered_at=now, attempts=_o.c.attempts + 1, last_error=None)
    )
    return bool(result.rowcount)


async def failed(
    connection: AsyncConnection,
    message: Claimed,
    *,
    error: str,
    next_attempt_at: dt.datetime | None,
) -> bool:
    """Another attempt at ``next_attempt_at``, or none (dead letter) when that is None;
    False when the claim was lost."""
    values: dict[str, Any] = {"attempts": _o.c.attempts + 1, "last_error": error[:512]}
    if next_attempt_at is None:
        values["status"] = "dead"
    else:
        values["next_attempt_at"] = next_attempt_at
    result = await connection.execute(update(_o).where(_still_ours(message)).values(**values))
    return bool(result.rowcount)


async def bury_subscriber(connection: AsyncConnection, subscriber_id: str, reason: str) -> None:
    """Pending notifications to a disabled subscriber become dead letters, with why."""
    await connection.execute(
        update(_o)
        .where(_o.c.subscriber_id == subscriber_id, _o.c.status == "pending")
        .values(status="dead", last_error=reason[:512])
    )


async def retry(connection: AsyncConnection, message_id: str, now: dt.datetime) -> bool:
    """A dead letter back in the queue, to be sent now (same webhook-id)."""
    result = await connection.execute(
        update(_o)
        .where(_o.c.id == message_id, _o.c.status == "dead")
        .values(status="pending", next_attempt_at=now, attempts=0)
    )
    return bool(result.rowcount)


async def counts(connection: AsyncConnection) -> dict[str, int]:
    query = select(_o.c.status, func.count()).group_by(_o.c.status)
    found = {status: int(n) for status, n in await connection.execute(query)}
    return {status: found.get(status, 0) for status in STATUSES}


def view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "subscriber_id": row["subscriber_id"],
        "incident_id": row["incident_id"],
        "change_kind": row["change_kind"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": row["next_attempt_at"],
        "last_error": row["last_error"],
        "created_at": row["created_at"],
        "delivered_at": row["delivered_at"],
    }


async def listing(
    connection: AsyncConnection, status: str | None, limit: int
) -> list[dict[str, Any]]:
    query = select(_o).order_by(_o.c.created_at.desc(), _o.c.id).limit(limit)
    if status is not None:
        query = query.where(_o.c.status == status)
    return [view(r) for r in (await connection.execute(query)).mappings()]
