"""Events and history for an incident, read from the database and handed to
``alerts.correlation``: which announced events it is linked to, and how often blocking
followed such events before."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.correlation import Link, Stats, history, link
from alerts.model import Event, Incident
from collector.config import Config
from collector.store import events as eventstore
from collector.store import incidents as incidentstore


@dataclass(frozen=True)
class Windows:
    lead: dt.timedelta  # an onset up to this long before an event still links to it
    lag: dt.timedelta  # … and up to this long after its start
    history: dt.timedelta  # how far back the statistics look

    @classmethod
    def of(cls, config: Config) -> Windows:
        return cls(
            dt.timedelta(seconds=config.correlation_lead_seconds),
            dt.timedelta(seconds=config.correlation_lag_seconds),
            dt.timedelta(days=config.correlation_history_days),
        )


@dataclass(frozen=True)
class Context:
    links: list[Link]
    events: dict[str, Event]
    stats: Stats | None


async def statistics(
    connection: AsyncConnection,
    *,
    kind: str,
    service: str,
    cc: str,
    windows: Windows,
    now: dt.datetime,
) -> Stats:
    since = now - windows.history
    events = await eventstore.listing(connection, cc=cc, since=since)
    past = await incidentstore.load(
        connection, incidentstore.filtered(service=service, cc=cc, since=since)
    )
    return history(past, events, kind=kind, service=service, cc=cc, window=windows.lag, now=now)


async def context_for(
    connection: AsyncConnection, incident: Incident, windows: Windows, now: dt.datetime
) -> Context:
    nearby = await eventstore.listing(
        connection,
        cc=incident.cc,
        since=incident.onset - windows.lag,
        until=incident.onset + windows.lead,
    )
    links = link(incident, nearby, windows.lead, windows.lag)
    by_id = {e.id: e for e in nearby}
    stats = None
    if links and links[0].event_id in by_id and incident.service is not None:
        kind = by_id[links[0].event_id].kind
        stats = await statistics(
            connection,
            kind=kind,
            service=incident.service,
            cc=incident.cc,
            windows=windows,
            now=now,
        )
    linked = {lk.event_id for lk in links}
    return Context(links, {k: v for k, v in by_id.items() if k in linked}, stats)
