"""Sentences about incidents, in the reader's language: the summary a newsroom can quote,
the title a feed or a shared link shows, and the correlation figure.

Pure: times arrive already formatted (``Clock``), so the same sentence serves the HTML
page, the plain-text version and the feeds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerts.correlation import Stats, format_p
from alerts.model import Event
from collector.api import hops
from collector.store.hops import HopCount
from collector.web.i18n import Catalogue
from collector.web.picture import Standing

Clock = Callable[[dt.datetime], str]


@dataclass(frozen=True)
class LinkedEvent:
    event: Event
    delay_seconds: float


def networks(c: Catalogue, asns: Sequence[int]) -> str:
    listed = ", ".join(f"AS{a}" for a in asns)
    counted = c.plural("networks", len(asns))
    return f"{counted} ({listed})" if asns else counted


def censor_hops(c: Catalogue, counts: Sequence[HopCount], title: Callable[[str], str]) -> list[str]:
    """One line per network and hop: "AS9198: 2 hops from the subscriber, inside AS9198
    (Telegram, X; 14 measurements)"."""
    lines: list[str] = []
    for network in hops.networks(counts):
        for cell in network["hops"]:
            distance = c.plural("hop_distance", cell["hop"])
            router = cell["router_asn"]
            where = c.text("hop_inside", distance=distance, asn=router) if router else distance
            services = ", ".join(title(s) for s in cell["services"])
            measured = c.plural("measurements", cell["measurements"])
            lines.append(
                c.text("hop_line", asn=network["asn"], where=where, services=services,
                       measurements=measured)
            )  # fmt: skip
    return lines


def kind_name(c: Catalogue, kind: str) -> str:
    entry = c.entries.get(f"kinds.{kind}")
    return entry if isinstance(entry, str) else kind


def title(c: Catalogue, s: Standing, service: str) -> str:
    in_country = c.country(s.incident.cc, "in")
    if s.incident.kind == "shutdown":
        return c.text("incident_title_shutdown", in_country=in_country)
    key = "incident_title_blocking" if s.confirmed else "incident_title_unconfirmed"
    return c.text(key, service=service, in_country=in_country)


def summary(
    c: Catalogue, s: Standing, service: str, clock: Clock, linked: Sequence[LinkedEvent]
) -> str:
    i = s.incident
    values = {
        "service": service,
        "in_country": c.country(i.cc, "in"),
        "onset": clock(i.onset),
        "resolved": clock(i.resolved_at) if i.resolved_at else "",
        "networks": networks(c, i.asns),
    }
    phase = "open" if i.resolved_at is None else "resolved"
    if i.kind == "shutdown":
        key = f"summary_shutdown_{phase}"
    elif not s.confirmed:
        key = "summary_unconfirmed"
    else:
        key = f"summary_blocking_{phase}"
    sentence = c.text(key, **values)
    if linked:
        first = linked[0]
        key = "summary_event_" + _side(first.delay_seconds)
        sentence += " " + c.text(
            key, minutes=_minutes(first.delay_seconds), kind=kind_name(c, first.event.kind),
            title=first.event.title,
        )  # fmt: skip
    return sentence


def correlation(c: Catalogue, stats: Stats | None, kind: str) -> str:
    if stats is None or stats.events == 0 or stats.p_value is None:
        # below the minimum of past events there is no test to cite (alerts.correlation)
        return c.text("correlation_none")
    return c.text(
        "correlation_line",
        hits=stats.hits,
        events=stats.events,
        kind=kind_name(c, kind),
        p=format_p(stats.p_value),
    )


def _minutes(seconds: float) -> int:
    return round(abs(seconds) / 60)


def _side(seconds: float) -> str:
    """``at`` when the delay rounds to no minutes at all: "0 min after" reads as a glitch."""
    if _minutes(seconds) == 0:
        return "at"
    return "after" if seconds >= 0 else "before"


def delay(c: Catalogue, seconds: float) -> str:
    return c.text("delay_" + _side(seconds), minutes=_minutes(seconds))
