"""What the status page reads: rollups (never raw measurements), incidents, probe coverage
and events, through the stores; counts from the rollup tables the aggregation API reads
(per country, or per ASN for the grid), so the page and the API agree.

Coverage is counted per country (probes, networks); nothing per probe leaves here, so the
page cannot place a volunteer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import BigInteger, ColumnElement, Table, and_, cast, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.model import Event
from alerts.watch import Window, active
from collector.config import Config
from collector.enrolment import watch
from collector.store import events as eventstore
from collector.store import hops as hopstore
from collector.store import incidents as incidentstore
from collector.store import schema
from collector.store import watch as watchstore
from collector.store.db import Database, as_utc
from collector.store.rollups import hour_of, hour_start
from collector.web.picture import Counts, Standing, standing
from probe.model import VERDICTS

NOW_HOURS: Final = 2  # "now" is the current hour and the one before it
WEEK: Final = dt.timedelta(days=7)


@dataclass(frozen=True)
class Coverage:
    probes: int
    networks: int


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
        found.append(standing(incidentstore.decode(body), raw, as_utc(updated_at)))
    return found


async def one(connection: AsyncConnection, incident_id: str) -> Standing | None:
    i = schema.incidents
    query = select(i.c.body, i.c.updated_at).where(i.c.id == incident_id)
    row = (await connection.execute(query)).first()
    if row is None:
        return None
    return standing(incidentstore.decode(row[0]), json.loads(row[0]), as_utc(row[1]))


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


async def _by_verdict(
    connection: AsyncConnection,
    table: Table,
    keys: Sequence[ColumnElement[Any]],
    conditions: Sequence[ColumnElement[bool]],
) -> dict[tuple[Any, ...], Counts]:
    """``keys`` → counts by verdict, summed in the database from ``table``.

    Grouped by verdict rather than one ``CASE`` sum per verdict, as the aggregation API
    spells it: the same rollup and the same sums, with one aggregate instead of eight (the
    7-day timeline of a country with a million measurements took twice as long).
    PostgreSQL sums bigints as numeric; integers decode several times faster than Decimals.
    """
    query = (
        select(*keys, table.c.verdict, cast(func.sum(table.c.count), BigInteger))
        .where(and_(*conditions))
        .group_by(*keys, table.c.verdict)
    )
    found: dict[tuple[Any, ...], dict[str, int]] = defaultdict(dict)
    for *key, verdict, n in await connection.execute(query):
        if verdict in VERDICTS and n:
            found[tuple(key)][verdict] = int(n)
    return {key: Counts(counts) for key, counts in found.items()}


def _recent(table: Table, now: dt.datetime) -> ColumnElement[bool]:
    return table.c.hour >= hour_of(now) - NOW_HOURS + 1


async def national_now(
    connection: AsyncConnection, now: dt.datetime, cc: str | None = None
) -> dict[tuple[str, str], Counts]:
    """(country, service) → counts in the last ``NOW_HOURS`` hours."""
    r = schema.rollup_countries
    conditions = [_recent(r, now), *([r.c.cc == cc] if cc is not None else [])]
    return await _by_verdict(connection, r, [r.c.cc, r.c.service], conditions)


async def networks_now(
    connection: AsyncConnection, now: dt.datetime, cc: str, services: Sequence[str]
) -> dict[tuple[str, int], Counts]:
    """(service, ASN) → counts in the last ``NOW_HOURS`` hours, in one country, for
    ``services`` (those ``national_now`` found)."""
    if not services:
        return {}
    r = schema.rollups
    conditions = [r.c.cc == cc, _recent(r, now), r.c.service.in_(sorted(services))]
    rows = await _by_verdict(connection, r, [r.c.service, r.c.asn], conditions)
    return {(service, int(asn)): counts for (service, asn), counts in rows.items()}


async def history(
    connection: AsyncConnection, cc: str, since: dt.datetime, bucket_hours: int = 1
) -> dict[str, dict[dt.datetime, Counts]]:
    """service → bucket start → counts, from ``since`` on, in one country: hourly counts
    summed into buckets of ``bucket_hours`` in the database."""
    r = schema.rollup_countries
    bucket = r.c.hour // bucket_hours
    conditions = [r.c.cc == cc, r.c.hour >= hour_of(since)]
    rows = await _by_verdict(connection, r, [bucket, r.c.service], conditions)
    out: dict[str, dict[dt.datetime, Counts]] = defaultdict(dict)
    for (number, service), counts in rows.items():
        out[service][hour_start(int(number) * bucket_hours)] = counts
    return dict(out)


async def events(
    connection: AsyncConnection, cc: str, since: dt.datetime, until: dt.datetime
) -> list[Event]:
    return await eventstore.listing(connection, cc=cc, since=since, until=until)


@dataclass(frozen=True)
class CountryReads:
    """Everything ``/country/CC`` shows, read in one go."""

    coverage: Coverage | None
    national: dict[tuple[str, str], Counts]
    networks: dict[tuple[str, int], Counts]
    standings: list[Standing]
    events: list[Event]
    windows: list[Window]  # watch windows active now
    hops: list[hopstore.HopCount]  # where each network's censoring hops sit, this week
    daily: dict[str, dict[dt.datetime, Counts]]
    weekly: dict[str, dict[dt.datetime, Counts]]


async def country(
    db: Database,
    config: Config,
    targets_text: str,
    cc: str,
    now: dt.datetime,
    periods: tuple[tuple[dt.datetime, int], tuple[dt.datetime, int]],
    events_between: tuple[dt.datetime, dt.datetime],
) -> CountryReads:
    """One country's page: the present, incidents and events on one connection, and the two
    timelines (``periods``: first bucket and hours per bucket), the longest reads, beside it
    on two more."""

    async def present() -> tuple[Any, ...]:
        async with db.reading() as connection:
            active = dt.timedelta(seconds=config.active_probe_seconds)
            cover = (await coverage(connection, now, active)).get(cc)
            national = await national_now(connection, now, cc)
            found = await networks_now(connection, now, cc, [service for _, service in national])
            recent = await standings(connection, cc=cc, since=now - WEEK, limit=50)
            announced = await events(connection, cc, *events_between)
            windows = await watching(connection, config, targets_text, now, cc)
            located = await hopstore.per_network(connection, cc, now - WEEK)
        return cover, national, found, recent, announced, windows, located

    async def timeline(first: dt.datetime, hours: int) -> dict[str, dict[dt.datetime, Counts]]:
        async with db.reading() as connection:
            return await history(connection, cc, first, hours)

    (
        (cover, national, found, recent, announced, windows, located),
        daily,
        weekly,
    ) = await asyncio.gather(present(), timeline(*periods[0]), timeline(*periods[1]))
    return CountryReads(cover, national, found, recent, announced, windows, located, daily, weekly)


async def watching(
    connection: AsyncConnection, config: Config, targets_text: str, now: dt.datetime,
    cc: str | None = None,
) -> list[Window]:  # fmt: skip
    """The watch windows active now (of one country, or of every country that has one), as
    probes receive them at check-in: around announced events, and opened by hand."""
    if cc is not None:
        countries = [cc]
    else:
        manual = {w.cc for w in await watchstore.current(connection, now)}
        policy = watch.policy(config)
        begun = await eventstore.listing(
            connection, since=now - policy.longest - policy.lag, until=now + policy.lead
        )
        countries = sorted(manual | {e.cc for e in begun})
    found: list[Window] = []
    for country in countries:
        found += await watch.windows(connection, config, targets_text, country, now)
    return sorted(active(found, now), key=lambda w: (w.cc, w.end, w.id))
