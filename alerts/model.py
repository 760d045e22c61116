"""Plain data the alert engine works on: observations in, incidents and changes out, events.

The collector translates its own rows into these; nothing here knows about storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

from probe.vocabulary import Verdict as Verdict

IncidentKind = Literal["blocking", "shutdown"]
ChangeKind = Literal["incident.opened", "incident.updated", "incident.resolved"]
EVENT_KINDS = ("livestream", "protest", "election", "other")


class Observation(msgspec.Struct, frozen=True, gc=False):
    """One service tested by one probe at one time, as the collector judged it.

    A struct, not a dataclass: the detector makes one per measurement stored, and a frozen
    dataclass takes several times as long to build; acyclic, so not traced by the cycle
    collector."""

    measurement_id: str
    probe_id: str
    service: str
    cc: str
    asn: int
    time: datetime  # UTC
    verdict: str  # ok | blocked | anomaly | down | offline
    methods: tuple[str, ...]
    confidence: float
    control: bool  # measured from a control vantage point
    received: datetime | None = None  # when the collector received it (UTC); None: ``time``
    voice: str = ""  # independence group: probes that count as one voice; "" = the probe
    weight: float = 1.0  # how much this voice counts towards confirmation (0-1]

    @property
    def heard(self) -> datetime:
        """When the collector heard of it: spans and windows never trust the probe's clock."""
        return self.received or self.time

    @property
    def speaker(self) -> str:
        return self.voice or self.probe_id


@dataclass(frozen=True)
class Incident:
    """A service blocked (or the network shut down) in one country, across its ASNs."""

    id: str
    kind: IncidentKind
    service: str | None  # None for a shutdown
    cc: str
    asns: tuple[int, ...]
    onset: datetime
    last_seen: datetime
    resolved_at: datetime | None
    methods: tuple[str, ...]
    confidence: float
    probes: int
    evidence: tuple[str, ...]
    rules: tuple[str, ...]
    rules_version: str
    confirmed_at: datetime | None = None  # None: too few independent voices so far
    voices: float = 0.0  # weighted independent voices that saw it

    @property
    def status(self) -> Literal["open", "unconfirmed", "resolved"]:
        if self.resolved_at is not None:
            return "resolved"
        return "open" if self.confirmed_at is not None else "unconfirmed"

    @property
    def confirmed(self) -> bool:
        """Ever confirmed by enough independent voices (a resolved one keeps its history)."""
        return self.confirmed_at is not None


@dataclass(frozen=True)
class Change:
    """What the detector decided in one step: one change per incident per step."""

    kind: ChangeKind
    incident: Incident


@dataclass(frozen=True)
class Event:
    """An announced livestream, protest call, election or other moment worth watching."""

    id: str
    kind: str  # livestream | protest | election | other
    title: str
    cc: str
    start: datetime
    end: datetime | None
    source_url: str | None
    tags: tuple[str, ...]
    series: str | None = None  # one recurring calendar entry: its occurrences share this id
