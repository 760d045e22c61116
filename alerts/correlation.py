"""Correlation of incidents with announced events: links now, and how often over history."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from alerts.model import Event, Incident

KIND_PLURALS = {
    "livestream": "livestreams",
    "protest": "protest calls",
    "election": "elections",
    "other": "announced events",
}


@dataclass(frozen=True)
class Link:
    """An incident that began near an event: delay = onset - event start (negative: before)."""

    event_id: str
    delay_seconds: float
    title: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Stats:
    hits: int  # events of the kind followed by blocking within the window
    events: int  # events of the kind in the history
    p_value: float
    baseline_rate: float  # share of comparable windows without an event that saw blocking
    line: str


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime


def link(
    incident: Incident, events: Sequence[Event], lead: timedelta, lag: timedelta
) -> list[Link]:
    """Events in the incident's country whose [start - lead, start + lag] holds its onset."""
    links = [
        Link(e.id, (incident.onset - e.start).total_seconds(), e.title, e.kind)
        for e in events
        if e.cc == incident.cc and e.start - lead <= incident.onset <= e.start + lag
    ]
    return sorted(links, key=lambda lk: (abs(lk.delay_seconds), lk.event_id))


def history(
    incidents: Sequence[Incident],
    events: Sequence[Event],
    *,
    kind: str,
    service: str,
    cc: str,
    window: timedelta,
    now: datetime,
    since: datetime | None = None,
    baseline_days: int = 28,
) -> Stats:
    """How often blocking of `service` in `cc` began within `window` after events of `kind`.

    Event windows are [start, start + window) for each event of the kind in the country that
    started after `since` and whose window has ended by `now` (or already saw blocking).
    Comparable windows are the same length at the same times of day on every other day from
    `since` (default: `baseline_days` before the first event) to `now`, skipping those that
    overlap any event in the country or each other. A window "saw blocking" when a blocking
    incident for the service and country has its onset inside it.

    The test is Fisher's exact test, one-sided: with N windows of which K saw blocking, the
    p-value is the hypergeometric probability that n windows drawn at random without
    replacement (n = number of event windows) hold at least as many blocking onsets as the
    event windows did. It is exact for any sample size and makes no assumption about the
    baseline rate beyond exchangeability of the windows.
    """
    onsets = sorted(
        i.onset
        for i in incidents
        if i.kind == "blocking" and i.service == service and i.cc == cc and i.onset <= now
    )
    local = [e for e in events if e.cc == cc]
    chosen = sorted((e for e in local if e.kind == kind), key=lambda e: e.start)
    first = since or (
        chosen[0].start - timedelta(days=baseline_days) if chosen else now - timedelta(days=1)
    )
    event_windows = [
        w
        for e in chosen
        if e.start >= first
        and ((w := _Window(e.start, e.start + window)).end <= now or _has_onset(w, onsets))
    ]
    controls = _control_windows(event_windows, local, window, first, now)
    hits = sum(_has_onset(w, onsets) for w in event_windows)
    control_hits = sum(_has_onset(w, onsets) for w in controls)
    p = fisher_greater(hits, len(event_windows), control_hits, len(controls))
    rate = control_hits / len(controls) if controls else 0.0
    return Stats(hits, len(event_windows), p, rate, _line(hits, len(event_windows), kind, p))


def fisher_greater(hits: int, n: int, control_hits: int, m: int) -> float:
    """P(X >= hits), X hypergeometric: n of n + m windows drawn, hits + control_hits marked."""
    total, marked = n + m, hits + control_hits
    if n == 0:
        return 1.0
    tail = sum(
        math.comb(marked, x) * math.comb(total - marked, n - x)
        for x in range(hits, min(n, marked) + 1)
    )
    return float(Fraction(tail, math.comb(total, n)))


def _has_onset(w: _Window, onsets: Sequence[datetime]) -> bool:
    return any(w.start <= t < w.end for t in onsets)


def _control_windows(
    event_windows: Sequence[_Window],
    local: Sequence[Event],
    window: timedelta,
    first: datetime,
    now: datetime,
) -> list[_Window]:
    busy = [_Window(e.start, max(e.end or e.start, e.start + window)) for e in local]
    clock_times = sorted({w.start - _midnight(w.start) for w in event_windows})
    day = _midnight(first)
    candidates = []
    while day <= now:
        for offset in clock_times:
            w = _Window(day + offset, day + offset + window)
            if w.start >= first and w.end <= now and not any(_overlap(w, b) for b in busy):
                candidates.append(w)
        day += timedelta(days=1)
    return _disjoint(candidates)


def _disjoint(windows: list[_Window]) -> list[_Window]:
    kept: list[_Window] = []
    for w in sorted(windows, key=lambda w: w.start):
        if not kept or w.start >= kept[-1].end:
            kept.append(w)
    return kept


def _overlap(a: _Window, b: _Window) -> bool:
    return a.start < b.end and b.start < a.end


def _midnight(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def format_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    return "p = " + (f"{p:.3f}".rstrip("0").rstrip(".") if p < 1 else "1")


def _line(hits: int, n: int, kind: str, p: float) -> str:
    plural = KIND_PLURALS.get(kind, f"{kind} events")
    if n == 0:
        return f"no {plural} in the history yet"
    if n == 1:
        singular = plural.removesuffix("s")
        return f"{hits} of the last 1 {singular}; {format_p(p)}"
    return f"{hits} of the last {n} {plural}; {format_p(p)}"
