"""The watch windows a probe receives at check-in: its country's announced events and the
windows operators opened by hand, as ``alerts.watch`` derives them."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.watch import WatchPolicy, Window, windows_for
from collector.config import Config
from collector.store import events as eventstore
from collector.store import watch as watchstore
from probe.targets import TargetListError, parse

MESSENGER = "messenger"


@dataclass(frozen=True)
class Catalogue:
    """The service names of the served target list, and which of them are messengers."""

    known: frozenset[str]
    messengers: frozenset[str]


@functools.lru_cache(maxsize=4)
def catalogue(text: str) -> Catalogue:
    try:
        services = parse(text, "<served target list>").services
    except TargetListError:
        return Catalogue(frozenset(), frozenset())
    return Catalogue(
        frozenset(s.name for s in services),
        frozenset(s.name for s in services if s.category == MESSENGER),
    )


def policy(config: Config) -> WatchPolicy:
    return WatchPolicy(
        lead=dt.timedelta(seconds=config.watch_lead_seconds),
        lag=dt.timedelta(seconds=config.watch_lag_seconds),
        intervals={
            MESSENGER: float(config.watch_messenger_interval_seconds),
            "*": float(config.watch_interval_seconds),
        },
    )


async def windows(
    connection: AsyncConnection, config: Config, targets_text: str, cc: str, now: dt.datetime
) -> list[Window]:
    chosen = policy(config)
    horizon = dt.timedelta(seconds=config.watch_horizon_seconds)
    earliest = now - chosen.longest - chosen.lag  # an event that began then may still be on
    events = await eventstore.listing(
        connection, cc=cc, since=earliest, until=now + horizon + chosen.lead
    )
    manual = await watchstore.current(connection, now, cc)
    names = catalogue(targets_text)
    return windows_for(cc, events, manual, now, horizon, chosen, names.known, names.messengers)


def wire(found: list[Window], config: Config) -> dict[str, object]:
    """The ``watch`` member of a check-in answer."""
    intervals = policy(config).intervals
    return {"windows": [w.wire(intervals) for w in found]}
