"""Watch windows: when the probes of a country measure densely, and what.

Blocking that matters starts around announced moments (a livestream, a protest called for
18:00, polls closing). Rather than measuring every 30 seconds all the time, probes tighten
their schedule inside a window around each announced event and relax after it:

- an event's window runs from ``lead`` before its start to ``lag`` after its end (events
  without an end last ``default_duration``);
- it covers the services the event names in its tags (``service:youtube`` or a plain known
  service name) and the messengers, or every service when it names none;
- operators open windows by hand ("election night, KZ, 18:00–02:00"), with the same shape.

Pure functions over plain data; the collector hands the windows to probes at check-in, and
the probe's scheduler (``probe.daemon.schedule``) treats them as data it is given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from alerts.model import Event

SERVICE_TAG = "service:"


def _default_intervals() -> dict[str, float]:
    return {"messenger": 30.0, "*": 60.0}


@dataclass(frozen=True)
class WatchPolicy:
    """How wide a window is around an event, and how often probes measure inside one."""

    lead: dt.timedelta = dt.timedelta(minutes=15)
    lag: dt.timedelta = dt.timedelta(minutes=30)
    default_duration: dt.timedelta = dt.timedelta(hours=2)
    longest: dt.timedelta = dt.timedelta(hours=24)  # an event's window is never longer
    intervals: Mapping[str, float] = field(default_factory=_default_intervals)
    """Seconds between measurements inside a window, per service category; ``*`` for the rest."""


@dataclass(frozen=True)
class Window:
    id: str
    cc: str
    start: dt.datetime
    end: dt.datetime
    services: tuple[str, ...] | None  # None: every service
    title: str
    source: str  # "event" or "manual"

    def covers(self, moment: dt.datetime) -> bool:
        return self.start <= moment < self.end

    def wire(self, intervals: Mapping[str, float]) -> dict[str, object]:
        """The form a probe receives at check-in."""
        return {
            "id": self.id,
            "title": self.title,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "services": list(self.services) if self.services is not None else None,
            "intervals": dict(intervals),
        }


def named_services(tags: Iterable[str], known: Collection[str]) -> tuple[str, ...]:
    """The services an event's tags name: ``service:NAME`` always, a bare NAME if known."""
    named: list[str] = []
    for tag in tags:
        name = tag[len(SERVICE_TAG) :] if tag.startswith(SERVICE_TAG) else tag
        if (tag.startswith(SERVICE_TAG) or tag in known) and name and name not in named:
            named.append(name)
    return tuple(named)


def window_for_event(
    event: Event, policy: WatchPolicy, known: Collection[str], messengers: Collection[str]
) -> Window:
    end = event.end if event.end is not None else event.start + policy.default_duration
    end = min(end, event.start + policy.longest)
    named = named_services(event.tags, known)
    services = tuple(dict.fromkeys([*named, *sorted(messengers)])) if named else None
    return Window(
        id=f"event:{event.id}",
        cc=event.cc,
        start=event.start - policy.lead,
        end=end + policy.lag,
        services=services,
        title=event.title,
        source="event",
    )


def windows_for(
    cc: str,
    events: Iterable[Event],
    manual: Iterable[Window],
    now: dt.datetime,
    horizon: dt.timedelta,
    policy: WatchPolicy,
    known: Collection[str],
    messengers: Collection[str],
) -> list[Window]:
    """The windows of one country that have not ended and begin within ``horizon``."""
    candidates = [window_for_event(e, policy, known, messengers) for e in events if e.cc == cc]
    candidates += [w for w in manual if w.cc == cc]
    soon = now + horizon
    wanted = [w for w in candidates if w.end > now and w.start < soon]
    return sorted(wanted, key=lambda w: (w.start, w.id))


def active(windows: Iterable[Window], now: dt.datetime) -> list[Window]:
    return [w for w in windows if w.covers(now)]


def next_boundary(windows: Iterable[Window], now: dt.datetime) -> dt.datetime | None:
    """The next moment a window starts or ends: when a probe should look again."""
    moments = [m for w in windows for m in (w.start, w.end) if m > now]
    return min(moments) if moments else None
