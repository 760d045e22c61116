"""Event sources in the database: what an operator registered, and how each poll went.

A poll is claimed before the feed is fetched: ``claim_due`` picks due sources with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and marks each claimed with a lease in the same
transaction, through an ``UPDATE … WHERE`` (still due and unclaimed) that succeeds for one
writer only (on SQLite, where writers take turns, that conditional
update is the whole mechanism). Replicas therefore poll each source once per interval, and
a replica that dies mid-poll only delays the next poll until its lease runs out.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.store import schema
from collector.store.db import Database, as_utc, as_utc_or_none
from collector.store.rows import by_id, delete_by_id, insert_row

_s: Final = schema.event_sources
MAX_ERROR: Final = 512


@dataclass(frozen=True)
class NewSource:
    url: str
    format: str | None
    cc: str | None
    kind: str
    keywords: tuple[tuple[str, str], ...]
    interval_seconds: int
    enabled: bool = True


@dataclass(frozen=True)
class Source:
    id: str
    url: str
    format: str | None
    cc: str | None
    kind: str
    keywords: tuple[tuple[str, str], ...]
    interval_seconds: int
    enabled: bool
    etag: str | None
    last_modified: str | None
    next_poll_at: dt.datetime
    last_attempt_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None
    event_count: int
    polls: int
    failures: int

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "format": self.format,
            "cc": self.cc,
            "kind": self.kind,
            "keywords": {word: kind for word, kind in self.keywords},
            "interval_seconds": self.interval_seconds,
            "enabled": self.enabled,
            "next_poll_at": self.next_poll_at,
            "last_attempt_at": self.last_attempt_at,
            "last_success_at": self.last_success_at,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "event_count": self.event_count,
            "polls": self.polls,
            "failures": self.failures,
        }


def from_row(row: RowMapping) -> Source:
    next_poll = as_utc(row["next_poll_at"])
    return Source(
        id=row["id"],
        url=row["url"],
        format=row["format"],
        cc=row["cc"],
        kind=row["kind"],
        keywords=tuple((str(w), str(k)) for w, k in json.loads(row["keywords"])),
        interval_seconds=int(row["interval_seconds"]),
        enabled=bool(row["enabled"]),
        etag=row["etag"],
        last_modified=row["last_modified"],
        next_poll_at=next_poll,
        last_attempt_at=as_utc_or_none(row["last_attempt_at"]),
        last_success_at=as_utc_or_none(row["last_success_at"]),
        last_error=row["last_error"],
        last_error_at=as_utc_or_none(row["last_error_at"]),
        event_count=int(row["event_count"]),
        polls=int(row["polls"]),
        failures=int(row["failures"]),
    )


def _settings(wanted: NewSource) -> dict[str, Any]:
    return {
        "url": wanted.url,
        "format": wanted.format,
        "cc": wanted.cc,
        "kind": wanted.kind,
        "keywords": json.dumps([list(pair) for pair in wanted.keywords]),
        "interval_seconds": wanted.interval_seconds,
        "enabled": wanted.enabled,
    }


async def add(connection: AsyncConnection, wanted: NewSource, now: dt.datetime) -> Source:
    source_id = "src-" + secrets.token_hex(6)
    row = {
        "id": source_id,
        **_settings(wanted),
        "next_poll_at": now,
        "event_count": 0,
        "polls": 0,
        "failures": 0,
        "created_at": now,
    }
    return from_row(await insert_row(connection, _s, row))


async def change(
    connection: AsyncConnection, source_id: str, wanted: NewSource, now: dt.datetime
) -> Source | None:
    """New settings; the next poll is due now and fetches in full (no validators)."""
    values = {**_settings(wanted), "etag": None, "last_modified": None, "next_poll_at": now}
    result = await connection.execute(update(_s).where(_s.c.id == source_id).values(**values))
    return await one(connection, source_id) if result.rowcount else None


async def one(connection: AsyncConnection, source_id: str) -> Source | None:
    row = await by_id(connection, _s, source_id)
    return None if row is None else from_row(row)


async def listing(connection: AsyncConnection) -> list[Source]:
    rows = (await connection.execute(select(_s).order_by(_s.c.created_at, _s.c.id))).mappings()
    return [from_row(r) for r in rows]


async def remove(connection: AsyncConnection, source_id: str) -> bool:
    """The source goes; the events it brought stay (they are history)."""
    removed = await delete_by_id(connection, _s, source_id)
    await connection.execute(
        update(schema.events).where(schema.events.c.source_id == source_id).values(source_id=None)
    )
    return removed


async def poll_now(connection: AsyncConnection, source_id: str, now: dt.datetime) -> bool:
    result = await connection.execute(
        update(_s).where(_s.c.id == source_id).values(next_poll_at=now)
    )
    return bool(result.rowcount)


async def claim_due(
    connection: AsyncConnection,
    db: Database,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int,
) -> list[Source]:
    """Due, enabled, unclaimed sources, each now claimed by this transaction's caller."""
    free = or_(_s.c.claimed_until.is_(None), _s.c.claimed_until < now)
    due = and_(_s.c.enabled.is_(True), _s.c.next_poll_at <= now, free)
    query = select(_s.c.id).where(due).order_by(_s.c.next_poll_at, _s.c.id).limit(limit)
    if db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for (source_id,) in (await connection.execute(query)).all():
        # the whole condition again: on SQLite the SELECT ran outside this write, and the
        # source may have been claimed, polled and released since
        take = update(_s).where(and_(_s.c.id == source_id, due))
        result = await connection.execute(take.values(claimed_until=now + lease))
        if result.rowcount:
            source = await one(connection, source_id)
            assert source is not None
            claimed.append(source)
    return claimed


async def record_success(
    connection: AsyncConnection,
    source: Source,
    now: dt.datetime,
    *,
    event_count: int,
    etag: str | None,
    last_modified: str | None,
) -> None:
    values = {
        "etag": etag[:512] if etag else None,
        "last_modified": last_modified[:64] if last_modified else None,
        "event_count": event_count,
        "last_success_at": now,
        "last_error": None,
    }
    await _finish_poll(connection, source, now, values)


async def record_not_modified(
    connection: AsyncConnection, source: Source, now: dt.datetime
) -> None:
    await _finish_poll(connection, source, now, {"last_success_at": now, "last_error": None})


async def record_failure(
    connection: AsyncConnection, source: Source, now: dt.datetime, error: str
) -> None:
    """The error is kept; the events, validators and count from the last success stay."""
    values = {
        "last_error": error[:MAX_ERROR],
        "last_error_at": now,
        "failures": _s.c.failures + 1,
    }
    await _finish_poll(connection, source, now, values)


async def _finish_poll(
    connection: AsyncConnection, source: Source, now: dt.datetime, values: dict[str, Any]
) -> None:
    after = now + dt.timedelta(seconds=source.interval_seconds)
    await connection.execute(
        update(_s)
        .where(_s.c.id == source.id)
        .values(
            **values,
            polls=_s.c.polls + 1,
            last_attempt_at=now,
            claimed_until=None,
            next_poll_at=after,
        )
    )
