"""Censoring hops in the database: written at ingest, read per country and network."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.store import schema
from collector.store.db import Database, as_utc

_h: Final = schema.censor_hops


@dataclass(frozen=True)
class HopCount:
    """How often one network's probes located a censoring hop at this distance."""

    asn: int
    hop: int
    router_asn: int | None
    service: str
    measurements: int
    last_seen: dt.datetime


async def add(connection: AsyncConnection, db: Database, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await connection.execute(db.insert(_h).on_conflict_do_nothing(), list(rows))


async def per_network(
    connection: AsyncConnection, cc: str, since: dt.datetime, service: str | None = None
) -> list[HopCount]:
    query = (
        select(
            _h.c.asn,
            _h.c.hop,
            _h.c.router_asn,
            _h.c.service,
            func.count().label("measurements"),
            func.max(_h.c.start_time).label("last_seen"),
        )
        .where(_h.c.cc == cc, _h.c.start_time >= since)
        .group_by(_h.c.asn, _h.c.hop, _h.c.router_asn, _h.c.service)
        .order_by(_h.c.asn, _h.c.hop, _h.c.service)
    )
    if service is not None:
        query = query.where(_h.c.service == service)
    rows = (await connection.execute(query)).mappings()
    return [
        HopCount(
            asn=int(r["asn"]),
            hop=int(r["hop"]),
            router_asn=None if r["router_asn"] is None else int(r["router_asn"]),
            service=str(r["service"]),
            measurements=int(r["measurements"]),
            last_seen=as_utc(r["last_seen"]),
        )
        for r in rows
    ]
