"""Correlation of incidents with announced events: links now, and how often over history.

**Link.** An incident is linked to every event in its country whose window
[start - lead, start + lag] holds its onset. A link is a coincidence in time, nothing more.

**History test.** For a subject — an event kind in a country ("livestreams in KZ") or one
recurring series ("the Monday/Wednesday/Friday opposition livestream") — the question is
whether blocking of a service began in the hour(s) after its events more often than at
comparable times without one:

- *Event windows*: [start, start + window) for each past event of the subject (finished,
  or already followed by blocking). *Comparable windows*: the same length at the same
  times of day on every other day of the history, skipping any that overlap an event in
  the country or each other. A window "saw blocking" when a blocking incident of the
  service in the country has its onset inside it.
- With n event windows of which `hits` saw blocking, and m comparable windows of which
  `control_hits` did, the p-value is Fisher's exact test, one-sided: the hypergeometric
  probability that n windows drawn at random from the n + m hold at least `hits` onsets.
  It is exact for any sample size and assumes only that windows are exchangeable under
  "events make no difference" — an assumption the same-time-of-day controls make fair
  for evening patterns, and one that autocorrelated blocking (weeks-long campaigns)
  weakens; the figure says what it rests on so a reader can judge.
- **No figure from few events.** With fewer than `min_events` (default 5) event windows
  there is no p-value at all: the exact test cannot reach significance from one or two
  events however strong the pattern, and "1 of the last 1" invites a reading it cannot
  bear. The line then says only that the onset coincided with the event.
- **Several subjects tested.** Whenever an incident is linked, every event kind of the
  country with enough history (and each linked series) is one test of the same question,
  so the family of p-values is corrected with Holm–Bonferroni (step-down: the i-th
  smallest of m p-values is multiplied by m - i + 1, then made monotone and capped at 1),
  which controls the family-wise error rate at the nominal level under any dependence.
  `Stats.p_raw` keeps the uncorrected value, `Stats.p_value` the corrected one, and
  `Stats.tests` the family size.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Final

from alerts.model import Event, Incident

MIN_EVENTS: Final = 5

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
class Subject:
    """What a history test is about: every event of a kind, or one recurring series."""

    kind: str
    series: str | None = None
    title: str = ""  # the series' title, for the line

    def chooses(self, event: Event) -> bool:
        if self.series is not None:
            return event.series == self.series
        return event.kind == self.kind


@dataclass(frozen=True)
class Stats:
    hits: int  # events of the subject followed by blocking within the window
    events: int  # events of the subject in the history
    p_value: float | None  # Holm-corrected; None below min_events
    baseline_rate: float  # share of comparable windows without an event that saw blocking
    line: str
    kind: str = ""
    series: str | None = None
    p_raw: float | None = None  # before the correction
    tests: int = 1  # size of the family corrected for
    controls: int = 0  # comparable windows
    control_hits: int = 0
    min_events: int = MIN_EVENTS


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
    series: str | None = None,
    min_events: int = MIN_EVENTS,
) -> Stats:
    """One subject's test, uncorrected (a family of one); see the module docstring.

    Comparable windows run from `since` (default: `baseline_days` before the subject's
    first event) to `now`.
    """
    subject = Subject(kind, series, _series_title(events, series))
    raw = _raw(incidents, events, subject, service, cc, window, now, since, baseline_days)
    return _finished(raw, subject, min_events, 1, raw.p_raw)


def correlate(
    incidents: Sequence[Incident],
    events: Sequence[Event],
    subjects: Sequence[Subject],
    *,
    service: str,
    cc: str,
    window: timedelta,
    now: datetime,
    min_events: int = MIN_EVENTS,
    since: datetime | None = None,
) -> list[Stats]:
    """Stats for each of `subjects`, Holm-corrected over the family: the subjects plus
    every event kind of the country with at least `min_events` past events (a kind whose
    events are exactly those of a subject is that subject's test, counted once)."""
    local = [e for e in events if e.cc == cc]
    family = list(dict.fromkeys(subjects))
    chosen = [_ids(local, s) for s in family]
    for kind in sorted({e.kind for e in local}):
        ids = _ids(local, Subject(kind))
        if ids not in chosen:  # a kind that is one series is that series' test, not another
            family.append(Subject(kind))
            chosen.append(ids)
    raws = {
        subject: _raw(incidents, local, subject, service, cc, window, now, since, 28)
        for subject in family
    }
    tested = [s for s in family if raws[s].events >= min_events]
    adjusted = dict(zip(tested, holm([raws[s].p_raw or 1.0 for s in tested]), strict=True))
    return [
        _finished(raws[s], s, min_events, max(1, len(tested)), adjusted.get(s)) for s in subjects
    ]


def _ids(events: Sequence[Event], subject: Subject) -> frozenset[str]:
    return frozenset(e.id for e in events if subject.chooses(e))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _series_title(events: Sequence[Event], series: str | None) -> str:
    return next((e.title for e in events if series is not None and e.series == series), "")


def _raw(
    incidents: Sequence[Incident],
    events: Sequence[Event],
    subject: Subject,
    service: str,
    cc: str,
    window: timedelta,
    now: datetime,
    since: datetime | None,
    baseline_days: int,
) -> Stats:
    onsets = sorted(
        i.onset
        for i in incidents
        if i.kind == "blocking" and i.service == service and i.cc == cc and i.onset <= now
    )
    local = [e for e in events if e.cc == cc]
    chosen = sorted((e for e in local if subject.chooses(e)), key=lambda e: e.start)
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
    return Stats(
        hits, len(event_windows), None, rate, "", subject.kind, subject.series, p, 1,
        len(controls), control_hits,
    )  # fmt: skip


def _finished(
    raw: Stats, subject: Subject, min_events: int, tests: int, adjusted: float | None
) -> Stats:
    enough = raw.events >= min_events
    p = adjusted if enough else None
    line = _line(raw, subject, min_events, tests, p)
    return Stats(
        raw.hits, raw.events, p, raw.baseline_rate, line, subject.kind, subject.series,
        raw.p_raw if enough else None, tests, raw.controls, raw.control_hits, min_events,
    )  # fmt: skip


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
    """Whether a blocking onset falls in the window; `onsets` are sorted."""
    i = bisect.bisect_left(onsets, w.start)
    return i < len(onsets) and onsets[i] < w.end


class _Busy:
    """The union of windows taken by events, as sorted disjoint spans: whether a window
    overlaps any of them is one binary search, not a scan of every event."""

    def __init__(self, windows: Sequence[_Window]) -> None:
        merged: list[list[datetime]] = []
        for w in sorted(windows, key=lambda w: w.start):
            if merged and w.start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], w.end)
            else:
                merged.append([w.start, w.end])
        self.starts = [m[0] for m in merged]
        self.ends = [m[1] for m in merged]

    def overlaps(self, w: _Window) -> bool:
        # the last span starting before w ends is the only one that can reach into it
        i = bisect.bisect_left(self.starts, w.end) - 1
        return i >= 0 and self.ends[i] > w.start


def _control_windows(
    event_windows: Sequence[_Window],
    local: Sequence[Event],
    window: timedelta,
    first: datetime,
    now: datetime,
) -> list[_Window]:
    busy = _Busy([_Window(e.start, max(e.end or e.start, e.start + window)) for e in local])
    clock_times = sorted({w.start - _midnight(w.start) for w in event_windows})
    day = _midnight(first)
    candidates = []
    while day <= now:
        for offset in clock_times:
            w = _Window(day + offset, day + offset + window)
            if w.start >= first and w.end <= now and not busy.overlaps(w):
                candidates.append(w)
        day += timedelta(days=1)
    return _disjoint(candidates)


def _disjoint(windows: list[_Window]) -> list[_Window]:
    kept: list[_Window] = []
    for w in sorted(windows, key=lambda w: w.start):
        if not kept or w.start >= kept[-1].end:
            kept.append(w)
    return kept


def _midnight(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def format_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    return "p = " + (f"{p:.3f}".rstrip("0").rstrip(".") if p < 1 else "1")


def _line(stats: Stats, subject: Subject, min_events: int, tests: int, p: float | None) -> str:
    """Words after "Blocking ": what was seen, and what any figure rests on."""
    plural = KIND_PLURALS.get(subject.kind, f"{subject.kind} events")
    singular = plural.removesuffix("s")
    what = f"{plural} of this series" if subject.series is not None else plural
    if p is None:
        if stats.events == 0:
            return f"coincided with an announced {singular}; there are no past {what} to compare"
        n = stats.events
        return (
            f"coincided with an announced {singular}; {n} past {what if n != 1 else singular} "
            f"{'is' if n == 1 else 'are'} too few for a statistic (at least {min_events} needed)"
        )
    basis = (
        f"Fisher's exact test against {stats.controls} comparable windows without one, "
        f"{stats.control_hits} of which saw blocking"
    )
    corrected = f"; Holm-corrected over {tests} tests" if tests > 1 else ""
    return (
        f"followed {stats.hits} of the last {stats.events} {what}; {format_p(p)} "
        f"({basis}{corrected})"
    )
