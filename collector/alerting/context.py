"""Events and history for an incident, read from the database and handed to
``alerts.correlation``: which announced events it is linked to, and how often blocking
followed such events before."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.correlation import MIN_EVENTS, Link, Stats, Subject, correlate, link
from alerts.model import Event, Incident
from collector.config import Config
from collector.store import events as eventstore
from collector.store import incidents as incidentstore


@dataclass(frozen=True)
class Windows:
    lead: dt.timedelta  # an onset up to this long before an event still links to it
    lag: dt.timedelta  # … and up to this long after its start
    history: dt.timedelta  # how far back the statistics look
    min_events: int = MIN_EVENTS  # fewer past events: no p-value

    @classmethod
    def of(cls, config: Config) -> Windows:
        return cls(
            dt.timedelta(seconds=config.correlation_lead_seconds),
            dt.timedelta(seconds=config.correlation_lag_seconds),
            dt.timedelta(days=config.correlation_history_days),
            config.correlation_min_events,
        )


@dataclass(frozen=True)
class Context:
    links: list[Link]
    events: dict[str, Event]
    stats: Stats | None  # for the closest linked event's series, or else its kind
    all_stats: tuple[Stats, ...] = ()  # one per distinct series or kind among the links


async def statistics(
    connection: AsyncConnection,
    subjects: Sequence[Subject],
    *,
    service: str,
    cc: str,
    windows: Windows,
    now: dt.datetime,
) -> list[Stats]:
    """The history test for each subject, corrected over the country's event kinds."""
    since = now - windows.history
    events = await eventstore.listing(connection, cc=cc, since=since)
    past = await incidentstore.load(
        connection, incidentstore.filtered(service=service, cc=cc, since=since)
    )
    return correlate(
        past,
        events,
        subjects,
        service=service,
        cc=cc,
        window=windows.lag,
        now=now,
        min_events=windows.min_events,
    )


def subject_of(event: Event) -> Subject:
    """A recurring event is judged with its series (the natural unit), others by kind."""
    if event.series is not None:
        return Subject(event.kind, event.series, event.title)
    return Subject(event.kind)


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
    found: list[Stats] = []
    subjects = list(dict.fromkeys(subject_of(by_id[lk.event_id]) for lk in links))
    if subjects and incident.service is not None:
        found = await statistics(
            connection,
            subjects,
            service=incident.service,
            cc=incident.cc,
            windows=windows,
            now=now,
        )
    linked = {lk.event_id for lk in links}
    events = {k: v for k, v in by_id.items() if k in linked}
    return Context(links, events, found[0] if found else None, tuple(found))
