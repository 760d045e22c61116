"""Incidents in the database: the detector's ``Incident`` as JSON beside filter columns."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import msgspec
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.model import Incident
from collector.store import schema
from collector.store.db import Database
from collector.store.rows import equal_where_given

_i: Final = schema.incidents
_decoder: Final = msgspec.json.Decoder(Incident)


def encode(incident: Incident) -> str:
    return msgspec.json.encode(incident).decode()


def decode(body: str | bytes) -> Incident:
    return _decoder.decode(body)


def to_row(incident: Incident, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": incident.id,
        "kind": incident.kind,
        "service": incident.service,
        "cc": incident.cc,
        "onset": incident.onset,
        "last_seen": incident.last_seen,
        "resolved_at": incident.resolved_at,
        "confidence": float(incident.confidence),
        "updated_at": now,
        "body": encode(incident),
    }


async def save(
    connection: AsyncConnection, db: Database, incident: Incident, now: dt.datetime
) -> None:
    row = to_row(incident, now)
    statement = db.insert(_i).values(**row)
    update = {k: statement.excluded[k] for k in row if k != "id"}
    await connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_=update))


def filtered(
    *,
    service: str | None = None,
    cc: str | None = None,
    kind: str | None = None,
    open_only: bool = False,
    since: dt.datetime | None = None,
) -> Select[Any]:
    conditions = equal_where_given(_i, service=service, cc=cc, kind=kind)
    if open_only:
        conditions.append(_i.c.resolved_at.is_(None))
    if since is not None:
        conditions.append(or_(_i.c.onset >= since, _i.c.resolved_at.is_(None)))
    return select(_i.c.body).where(and_(True, *conditions)).order_by(_i.c.onset.desc(), _i.c.id)


async def load(connection: AsyncConnection, query: Select[Any]) -> list[Incident]:
    return [decode(body) for (body,) in await connection.execute(query)]


async def one(connection: AsyncConnection, incident_id: str) -> Incident | None:
    row = (await connection.execute(select(_i.c.body).where(_i.c.id == incident_id))).first()
    return None if row is None else decode(row[0])
