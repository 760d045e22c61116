"""What the status page reads: rollups (never raw measurements), incidents, probe coverage
and events, through the stores and the aggregation API's own query.

Coverage is counted per country (probes, networks); nothing per probe leaves here, so the
page cannot place a volunteer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import BigInteger, and_, cast, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.model import Event
from collector.api import aggregation
from collector.api.filters import Filters
from collector.store import events as eventstore
from collector.store import incidents as incidentstore
from collector.store import schema
from collector.store.rollups import hour_of, hour_start
from collector.web.picture import Counts, Standing, standing

NOW_HOURS: Final = 2  # "now" is the current hour and the one before it


@dataclass(frozen=True)
class Coverage:
    probes: int
    networks: int


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


async def standings(
    connection: AsyncConnection,
    *,
    cc: str | None = None,
    since: dt.datetime | None = None,
    open_only: bool = False,
    limit: int = 100,
) -> list[Standing]:
    """Incidents, newest onset first: open ones, and those since ``since``."""
    i = schema.incidents
    query = incidentstore.filtered(cc=cc, open_only=open_only, since=since)
    query = query.add_columns(i.c.updated_at).limit(limit)
    found = []
    for body, updated_at in await connection.execute(query):
        raw = json.loads(body)
        found.append(standing(incidentstore.decode(body), raw, _aware(updated_at)))
    return found


async def one(connection: AsyncConnection, incident_id: str) -> Standing | None:
    i = schema.incidents
    query = select(i.c.body, i.c.updated_at).where(i.c.id == incident_id)
    row = (await connection.execute(query)).first()
    if row is None:
        return None
    return standing(incidentstore.decode(row[0]), json.loads(row[0]), _aware(row[1]))


async def coverage(
    connection: AsyncConnection, now: dt.datetime, active: dt.timedelta
) -> dict[str, Coverage]:
    """Per country: probes seen within ``active`` (not control, not revoked), and their ASNs."""
    p = schema.probes
    query = (
        select(p.c.cc, func.count(), func.count(distinct(p.c.asn)))
        .where(and_(p.c.cc.is_not(None), p.c.revoked_at.is_(None), p.c.control.is_(False)))
        .where(p.c.last_seen_at >= now - active)
        .group_by(p.c.cc)
    )
    return {cc: Coverage(int(n), int(a)) for cc, n, a in await connection.execute(query)}


_VERDICT_COLUMNS: Final = tuple(c.removesuffix("_count") for c in aggregation.COUNT_COLUMNS[1:])


def _counts(values: Sequence[Any]) -> Counts:
    return Counts({v: int(n) for v, n in zip(_VERDICT_COLUMNS, values, strict=True) if n})


async def _aggregate(
    connection: AsyncConnection,
    axes: tuple[str, ...],
    filters: Filters,
    services: Sequence[str] | None = None,
) -> list[tuple[tuple[Any, ...], Counts]]:
    """The aggregation API's own query (so the page agrees with the API): each row's axis
    values and its counts by verdict. ``services`` narrows it to those services, which
    lets the per-ASN rollup's (cc, service, hour) index serve a country's recent hours."""
    a = aggregation.Aggregation(axes, "hour", filters, csv=False)
    statement = aggregation.statement(a)
    if services is not None:
        statement = statement.where(a.table.c.service.in_(sorted(services)))
    query = statement.subquery()
    # PostgreSQL sums bigints as numeric; integers decode several times faster than Decimals
    columns = [c if c.name in axes else cast(c, BigInteger) for c in query.c]
    out = []
    for row in await connection.execute(select(*columns)):
        if row[len(axes)] is not None:  # SUM over no rows
            out.append((tuple(row[: len(axes)]), _counts(row[len(axes) + 1 :])))
    return out


async def national_now(
    connection: AsyncConnection, now: dt.datetime, cc: str | None = None
) -> dict[tuple[str, str], Counts]:
    """(country, service) → counts in the last ``NOW_HOURS`` hours."""
    since = hour_start(hour_of(now) - NOW_HOURS + 1)
    rows = await _aggregate(connection, ("cc", "service"), Filters(cc=cc, since=since))
    return {(c, service): counts for (c, service), counts in rows}


async def networks_now(
    connection: AsyncConnection, now: dt.datetime, cc: str, services: Sequence[str]
) -> dict[tuple[str, int], Counts]:
    """(service, ASN) → counts in the last ``NOW_HOURS`` hours, in one country, for
    ``services`` (those ``national_now`` found)."""
    if not services:
        return {}
    since = hour_start(hour_of(now) - NOW_HOURS + 1)
    rows = await _aggregate(connection, ("service", "asn"), Filters(cc=cc, since=since), services)
    return {(service, int(asn)): counts for (service, asn), counts in rows}


async def history(
    connection: AsyncConnection, cc: str, since: dt.datetime, bucket_hours: int = 1
) -> dict[str, dict[dt.datetime, Counts]]:
    """service → bucket start → counts, from ``since`` on, in one country: the aggregation
    API's hourly counts, summed into buckets of ``bucket_hours`` in the database."""
    a = aggregation.Aggregation(("time", "service"), "hour", Filters(cc=cc, since=since), False)
    hourly = aggregation.statement(a).subquery()
    bucket = (hourly.c.time // bucket_hours).label("bucket")
    sums = [cast(func.sum(hourly.c[c]), BigInteger) for c in aggregation.COUNT_COLUMNS[1:]]
    query = select(bucket, hourly.c.service, *sums).group_by(bucket, hourly.c.service)
    out: dict[str, dict[dt.datetime, Counts]] = defaultdict(dict)
    for number, service, *counts in await connection.execute(query):
        out[service][hour_start(int(number) * bucket_hours)] = _counts(counts)
    return dict(out)


async def events(
    connection: AsyncConnection, cc: str, since: dt.datetime, until: dt.datetime
) -> list[Event]:
    return await eventstore.listing(connection, cc=cc, since=since, until=until)
