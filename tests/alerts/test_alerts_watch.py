"""Watch windows around announced events (pure)."""

from __future__ import annotations

import datetime as dt

from alerts.model import Event
from alerts.watch import WatchPolicy, Window, active, next_boundary, window_for_event, windows_for

T0 = dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)
KNOWN = {"telegram", "whatsapp", "youtube", "facebook", "vk"}
MESSENGERS = {"telegram", "whatsapp"}


def event(
    cc: str = "KZ", tags: tuple[str, ...] = (), end: dt.datetime | None = None, i: int = 1
) -> Event:
    return Event(
        id=f"e{i}", kind="livestream", title="Opposition livestream", cc=cc, start=T0 + dt.timedelta(days=i - 1),
        end=end, source_url=None, tags=tags,
    )  # fmt: skip


def test_a_window_opens_before_the_event_and_closes_after_it() -> None:
    w = window_for_event(event(end=T0 + dt.timedelta(hours=1)), WatchPolicy(), KNOWN, MESSENGERS)
    assert w.start == T0 - dt.timedelta(minutes=15)
    assert w.end == T0 + dt.timedelta(hours=1, minutes=30)
    assert w.services is None  # names no service: every service


def test_a_window_covers_the_services_an_event_names_and_the_messengers() -> None:
    w = window_for_event(
        event(tags=("service:youtube", "facebook", "evening")), WatchPolicy(), KNOWN, MESSENGERS
    )
    assert w.services is not None
    assert set(w.services) == {"youtube", "facebook", "telegram", "whatsapp"}


def test_an_event_without_an_end_lasts_the_default_and_none_lasts_forever() -> None:
    policy = WatchPolicy()
    open_ended = window_for_event(event(), policy, KNOWN, MESSENGERS)
    assert open_ended.end == T0 + policy.default_duration + policy.lag
    endless = window_for_event(event(end=T0 + dt.timedelta(days=30)), policy, KNOWN, MESSENGERS)
    assert endless.end - endless.start <= policy.lead + policy.longest + policy.lag


def test_windows_of_a_country_within_the_horizon_with_manual_ones() -> None:
    manual = Window(
        "manual:1",
        "KZ",
        T0 + dt.timedelta(hours=3),
        T0 + dt.timedelta(hours=8),
        None,
        "Election night",
        "manual",
    )
    events = [event(i=1), event(i=2), event(i=30), event(cc="RU", i=1)]
    got = windows_for(
        "KZ", events, [manual], T0, dt.timedelta(days=3), WatchPolicy(), KNOWN, MESSENGERS
    )
    assert [w.id for w in got] == ["event:e1", "manual:1", "event:e2"]
    assert [w.id for w in active(got, T0)] == ["event:e1"]
    assert next_boundary(got, T0) == got[0].end


def test_ended_windows_are_not_handed_out() -> None:
    got = windows_for(
        "KZ",
        [event()],
        [],
        T0 + dt.timedelta(days=1),
        dt.timedelta(days=1),
        WatchPolicy(),
        KNOWN,
        MESSENGERS,
    )
    assert got == []
