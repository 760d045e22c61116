"""What the status page shows, decided from plain data: the state of a service on a network
or in a country, an incident's standing, and the blocked share over time.

No storage here. The page never says "blocked" on its own authority: ``blocked`` needs an
open, confirmed incident from the alert engine; measurements alone that say blocked show as
``unconfirmed``. Any status or verdict string the data carries that this version does not
know is passed through, to be shown neutrally.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from alerts.model import Incident

KNOWN_STATES: Final = (
    "blocked", "throttled", "unconfirmed", "shutdown", "ok", "offline", "anomaly", "down",
    "nodata",
)  # fmt: skip
# Most alarming first: a country's headline is the worst state of its services.
SEVERITY: Final = {s: i for i, s in enumerate(("shutdown", "blocked", "throttled", "unconfirmed"))}
THROTTLING: Final = "throttled"


@dataclass(frozen=True)
class Standing:
    """An incident as the page shows it: its state, and whether it is confirmed and open."""

    incident: Incident
    status: str  # open | resolved | unconfirmed | anything newer
    confirmed: bool
    updated_at: dt.datetime

    @property
    def open(self) -> bool:
        return self.incident.resolved_at is None

    @property
    def state(self) -> str:
        if self.incident.kind == "shutdown":
            return "shutdown"
        if not self.confirmed:
            return "unconfirmed"
        if self.incident.methods and all(m == THROTTLING for m in self.incident.methods):
            return "throttled"
        if self.status in ("open", "resolved"):
            return "blocked"
        return self.status


def standing(incident: Incident, raw: Mapping[str, Any], updated_at: dt.datetime) -> Standing:
    """Read the incident's status from its stored JSON, whichever way the engine records it
    (a ``status`` string, a ``confirmed`` flag, or the ``status`` property)."""
    status = raw.get("status")
    if not isinstance(status, str) or not status:
        status = str(getattr(incident, "status", "open"))
    confirmed = status != "unconfirmed" and raw.get("confirmed") is not False
    if incident.resolved_at is not None and status in ("open", "unconfirmed"):
        status = "resolved"
    return Standing(incident, status, confirmed, updated_at)


@dataclass(frozen=True)
class Counts:
    """Verdict counts of one service on one network (or a country) over a window."""

    by_verdict: Mapping[str, int] = field(default_factory=dict)

    @functools.cached_property
    def total(self) -> int:
        return sum(self.by_verdict.values())

    @functools.cached_property
    def judged(self) -> int:
        """Measurements that could say anything about blocking (not ``offline``)."""
        return self.total - self.by_verdict.get("offline", 0)

    def share(self, verdict: str) -> float | None:
        return None if self.judged <= 0 else self.by_verdict.get(verdict, 0) / self.judged

    def __add__(self, other: Counts) -> Counts:
        merged = dict(self.by_verdict)
        for verdict, n in other.by_verdict.items():
            merged[verdict] = merged.get(verdict, 0) + n
        return Counts(merged)


def measured_state(counts: Counts) -> str:
    """The state measurements alone support: most common verdict, ``blocked`` as unconfirmed."""
    if counts.total == 0:
        return "nodata"
    if counts.by_verdict.get("offline", 0) * 2 >= counts.total:
        return "offline"
    judged = [(-n, v) for v, n in counts.by_verdict.items() if v != "offline" and n > 0]
    verdict = min(judged)[1]  # the most common; a tie goes to the first name
    return "unconfirmed" if verdict == "blocked" else verdict


def covers(s: Standing, service: str | None, asn: int | None) -> bool:
    if not s.open:
        return False
    if s.incident.kind == "shutdown":
        return asn is None or not s.incident.asns or asn in s.incident.asns
    return s.incident.service == service and (asn is None or asn in s.incident.asns)


def cell_state(counts: Counts, standings: Sequence[Standing], service: str, asn: int | None) -> str:
    """One service on one network (``asn``) or nationally (``asn`` None), now."""
    states = [s.state for s in standings if covers(s, service, asn)]
    if states:
        return worst(states)
    return measured_state(counts)


def worst(states: Iterable[str]) -> str:
    ordered = sorted(states, key=lambda s: (SEVERITY.get(s, len(SEVERITY)), s))
    return ordered[0] if ordered else "nodata"


def css_state(state: str) -> str:
    """The class a state is drawn with; unknown states are drawn neutrally."""
    return state if state in KNOWN_STATES else "other"


@dataclass(frozen=True)
class Point:
    start: dt.datetime
    blocked: int = 0
    judged: int = 0  # measurements that could say anything about blocking

    @property
    def blocked_share(self) -> float | None:
        return None if self.judged <= 0 else self.blocked / self.judged


def series(
    hourly: Mapping[dt.datetime, Counts], first: dt.datetime, buckets: int, width: dt.timedelta
) -> list[Point]:
    """Hourly counts summed into ``buckets`` consecutive buckets of ``width`` from ``first``."""
    blocked, judged = [0] * buckets, [0] * buckets
    span = width.total_seconds()
    for hour, counts in hourly.items():
        index = int((hour - first).total_seconds() // span)
        if 0 <= index < buckets:
            blocked[index] += counts.by_verdict.get("blocked", 0)
            judged[index] += counts.judged
    return [Point(first + i * width, blocked[i], judged[i]) for i in range(buckets)]
