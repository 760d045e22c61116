"""Observation builders and a driver that feeds the detector in batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from alerts.incidents import DetectorConfig, DetectorState, detect
from alerts.model import Change, Observation

T0 = datetime(2024, 5, 1, 18, 0, tzinfo=UTC)
DEFAULT = DetectorConfig()
_counter = iter(range(10**9))


def obs(
    probe: str,
    minute: float,
    verdict: str = "ok",
    *,
    asn: int = 9198,
    service: str = "telegram",
    cc: str = "KZ",
    methods: Sequence[str] = (),
    control: bool = False,
    confidence: float = 0.9,
    received: datetime | None = None,
    voice: str = "",
    weight: float = 1.0,
) -> Observation:
    if verdict == "blocked" and not methods:
        methods = ("dns.nxdomain",)
    return Observation(
        measurement_id=f"m{next(_counter)}",
        probe_id=probe,
        service=service,
        cc=cc,
        asn=asn,
        time=T0 + timedelta(minutes=minute),
        verdict=verdict,
        methods=tuple(methods),
        confidence=confidence,
        control=control,
        received=received,
        voice=voice,
        weight=weight,
    )


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def feed(
    batches: Iterable[tuple[float, Sequence[Observation]]],
    *,
    state: DetectorState | None = None,
    config: DetectorConfig = DEFAULT,
    roundtrip: bool = False,
) -> tuple[DetectorState, list[Change]]:
    """Run detect once per (now-minute, observations) batch; collect every change."""
    state = state or DetectorState()
    changes: list[Change] = []
    for minute, batch in batches:
        if roundtrip:
            state = DetectorState.from_json(state.to_json())
        state, new = detect(state, batch, at(minute), config)
        changes.extend(new)
    return state, changes


def per_minute(observations: Sequence[Observation]) -> list[tuple[float, list[Observation]]]:
    """Batch observations by the minute they were taken, as a collector cycle would."""
    by_minute: dict[float, list[Observation]] = {}
    for o in sorted(observations, key=lambda o: o.time):
        minute = (o.time - T0).total_seconds() // 60 + 1
        by_minute.setdefault(minute, []).append(o)
    return sorted(by_minute.items())


def opened(changes: Sequence[Change], kind: str = "blocking") -> list[Change]:
    return [c for c in changes if c.kind == "incident.opened" and c.incident.kind == kind]
