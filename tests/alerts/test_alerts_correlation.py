"""Correlation: link windows, the exact test against brute force, the plain-words line."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.correlation import (
    Subject,
    _Busy,
    _has_onset,
    _Window,
    correlate,
    fisher_greater,
    history,
    holm,
    link,
)
from alerts.events import Horizon, options_for, parse
from alerts.model import Event, Incident

DAY0 = datetime(2024, 3, 1, tzinfo=UTC)


def incident(onset: datetime, *, service: str = "telegram", cc: str = "KZ") -> Incident:
    return Incident(
        id=f"i-{onset:%m%d%H%M}",
        kind="blocking",
        service=service,
        cc=cc,
        asns=(9198,),
        onset=onset,
        last_seen=onset,
        resolved_at=None,
        methods=("dns.nxdomain",),
        confidence=0.9,
        probes=3,
        evidence=(),
        rules=(),
        rules_version="1",
    )


def event(start: datetime, *, kind: str = "livestream", cc: str = "KZ", n: int = 0) -> Event:
    return Event(f"e{n}", kind, f"Stream {n}", cc, start, None, None, ())


def test_link_window_and_delay() -> None:
    start = DAY0 + timedelta(hours=19)
    events = [
        event(start, n=1),
        event(start - timedelta(hours=3), n=2),
        event(start, cc="RU", n=3),
    ]
    lead, lag = timedelta(minutes=30), timedelta(hours=2)
    assert link(incident(start + timedelta(minutes=4)), events, lead, lag)[0].delay_seconds == 240
    assert [lk.event_id for lk in link(incident(start), events, lead, lag)] == ["e1"]
    assert (
        link(incident(start - timedelta(minutes=30)), events, lead, lag)[0].delay_seconds == -1800
    )
    assert link(incident(start - timedelta(minutes=31)), events, lead, lag) == []
    assert link(incident(start + lag), events, lead, lag)[0].event_id == "e1"
    assert link(incident(start + lag + timedelta(seconds=1)), events, lead, lag) == []


def test_seven_of_eight_livestreams() -> None:
    stream_days = [2 * k + 30 for k in range(8)]
    events = [event(DAY0 + timedelta(days=d, hours=19), n=d) for d in stream_days]
    onsets = [DAY0 + timedelta(days=d, hours=19, minutes=4) for d in stream_days[:7]]
    onsets.append(DAY0 + timedelta(days=5, hours=19, minutes=20))  # one without a stream
    now = DAY0 + timedelta(days=60)
    stats = history(
        [incident(t) for t in onsets],
        events,
        kind="livestream",
        service="telegram",
        cc="KZ",
        window=timedelta(hours=1),
        now=now,
    )
    assert (stats.hits, stats.events) == (7, 8)
    assert stats.p_value < 0.001
    assert stats.line == (
        "followed 7 of the last 8 livestreams; p < 0.001 (Fisher's exact test against 50 "
        "comparable windows without one, 1 of which saw blocking)"
    )
    assert 0 < stats.baseline_rate < 0.1


def test_no_events_line() -> None:
    stats = history(
        [], [], kind="protest", service="x", cc="KZ", window=timedelta(hours=1), now=DAY0
    )
    assert (stats.hits, stats.events, stats.p_value) == (0, 0, None)
    assert (
        stats.line
        == "coincided with an announced protest call; there are no past protest calls to compare"
    )


def test_other_countries_and_services_do_not_count() -> None:
    events = [event(DAY0 + timedelta(days=d, hours=19), n=d) for d in (10, 12)]
    onsets = [incident(e.start + timedelta(minutes=1), service="vk") for e in events]
    onsets += [incident(e.start + timedelta(minutes=1), cc="RU") for e in events]
    stats = history(
        onsets,
        events,
        kind="livestream",
        service="telegram",
        cc="KZ",
        window=timedelta(hours=1),
        now=DAY0 + timedelta(days=20),
        min_events=2,
    )
    assert stats.hits == 0
    assert stats.p_value == 1.0


def _brute_force(hits: int, n: int, control_hits: int, m: int) -> float:
    marks = [1] * (hits + control_hits) + [0] * (n + m - hits - control_hits)
    draws = list(itertools.combinations(range(n + m), n))
    extreme = sum(1 for d in draws if sum(marks[i] for i in d) >= hits)
    return extreme / len(draws)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6), st.integers(0, 8), st.data())
def test_fisher_matches_brute_force_enumeration(n: int, m: int, data: st.DataObject) -> None:
    hits = data.draw(st.integers(0, n))
    control_hits = data.draw(st.integers(0, m))
    assert fisher_greater(hits, n, control_hits, m) == pytest.approx(
        _brute_force(hits, n, control_hits, m), abs=1e-12
    )


def test_p_value_from_history_matches_brute_force_on_a_small_case() -> None:
    events = [event(DAY0 + timedelta(days=d, hours=20), n=d) for d in (3, 5, 6)]
    onsets = [DAY0 + timedelta(days=d, hours=20, minutes=10) for d in (3, 5, 1)]
    stats = history(
        [incident(t) for t in onsets],
        events,
        kind="livestream",
        service="telegram",
        cc="KZ",
        window=timedelta(hours=1),
        now=DAY0 + timedelta(days=8),
        since=DAY0,
        min_events=3,
    )
    # windows: days 0..7 at 20:00; days 3, 5, 6 are events, the other 5 are controls.
    assert (stats.hits, stats.events) == (2, 3)
    assert stats.baseline_rate == pytest.approx(1 / 5)
    assert stats.p_value == pytest.approx(_brute_force(2, 3, 1, 5))
    assert stats.line.startswith(f"followed 2 of the last 3 livestreams; p = {stats.p_value:.3f}")


def test_no_p_value_below_the_minimum_number_of_past_events() -> None:
    # The demo's old line: one livestream, blocking right after it.
    start = DAY0 + timedelta(days=20, hours=19)
    stats = history(
        [incident(start + timedelta(minutes=3))],
        [event(start)],
        kind="livestream",
        service="telegram",
        cc="KZ",
        window=timedelta(hours=1),
        now=start + timedelta(minutes=10),
    )
    assert (stats.hits, stats.events) == (1, 1)
    assert stats.p_value is None
    assert stats.p_raw is None
    assert "p =" not in stats.line
    assert "of the last" not in stats.line
    assert stats.line.startswith("coincided with an announced livestream")


@pytest.mark.parametrize(("past", "has_p"), [(4, False), (5, True)])
def test_the_minimum_is_configurable_and_inclusive(past: int, has_p: bool) -> None:
    days = [2 * k + 30 for k in range(past)]
    events = [event(DAY0 + timedelta(days=d, hours=19), n=d) for d in days]
    onsets = [incident(e.start + timedelta(minutes=5)) for e in events]
    stats = history(
        onsets, events, kind="livestream", service="telegram", cc="KZ",
        window=timedelta(hours=1), now=DAY0 + timedelta(days=60), min_events=5,
    )  # fmt: skip
    assert (stats.p_value is not None) == has_p


def test_holm_matches_its_definition() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.5]) == [1.0, 1.0]
    assert holm([]) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_holm_never_below_raw_never_above_bonferroni(ps: list[float]) -> None:
    adjusted = holm(ps)
    for p, a in zip(ps, adjusted, strict=True):
        assert p <= a + 1e-12
        assert a <= min(1.0, len(ps) * p) + 1e-12


def test_correction_over_the_event_kinds_of_the_country() -> None:
    stream_days = [2 * k + 30 for k in range(8)]
    streams = [event(DAY0 + timedelta(days=d, hours=19), n=d) for d in stream_days]
    protests = [
        event(DAY0 + timedelta(days=d, hours=12), kind="protest", n=100 + d)
        for d in (31, 35, 39, 43, 47)
    ]
    onsets = [incident(e.start + timedelta(minutes=4)) for e in streams[:7]]
    now = DAY0 + timedelta(days=60)
    common = {"service": "telegram", "cc": "KZ", "window": timedelta(hours=1), "now": now}
    [alone] = correlate(onsets, streams, [Subject("livestream")], **common)  # type: ignore[arg-type]
    [corrected] = correlate(onsets, streams + protests, [Subject("livestream")], **common)  # type: ignore[arg-type]
    assert alone.tests == 1
    assert corrected.tests == 2
    assert corrected.p_raw == pytest.approx(alone.p_raw)
    assert corrected.p_value == pytest.approx(min(1.0, 2 * (alone.p_raw or 1.0)))
    assert "Holm-corrected over 2 tests" in corrected.line


def test_a_series_is_its_own_subject() -> None:
    # Twelve occurrences of one series and, on other evenings, one-off livestreams.
    series = [
        Event(f"s_{d}", "livestream", "Opposition livestream", "KZ",
              DAY0 + timedelta(days=d, hours=14), None, None, (), "s")
        for d in range(30, 54, 2)
    ]  # fmt: skip
    others = [event(DAY0 + timedelta(days=d, hours=9), n=d) for d in range(31, 55, 2)]
    onsets = [incident(e.start + timedelta(minutes=6)) for e in series[:9]]
    now = DAY0 + timedelta(days=60)
    [of_series, of_kind] = correlate(
        onsets,
        series + others,
        [Subject("livestream", "s", "Opposition livestream"), Subject("livestream")],
        service="telegram", cc="KZ", window=timedelta(hours=1), now=now,
    )  # fmt: skip
    assert (of_series.hits, of_series.events) == (9, 12)
    assert of_series.line.startswith("followed 9 of the last 12 livestreams of this series;")
    assert (of_kind.hits, of_kind.events) == (9, 24)
    assert of_series.p_value is not None
    assert of_series.p_value < 0.001


def test_the_issue_rrule_gives_twelve_occurrences_and_a_series_statistic() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:stream@exile.example\r\n"
        "SUMMARY:Opposition livestream\r\nDTSTART;TZID=Asia/Almaty:20240304T190000\r\n"
        "DURATION:PT2H\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=12\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    horizon = Horizon(DAY0 - timedelta(days=60), DAY0 + timedelta(days=60))
    options = options_for("KZ", None, [("livestream", "livestream")])
    occurrences = parse(text, "ical", options, horizon).events
    assert len(occurrences) == 12
    assert len({e.id for e in occurrences}) == 12
    series = occurrences[0].series
    assert series is not None
    # blocking began a few minutes into 9 of the 12 streams, and on one evening without
    onsets = [incident(e.start + timedelta(minutes=7)) for e in occurrences[:9]]
    onsets.append(incident(occurrences[-1].start + timedelta(days=1)))
    now = occurrences[-1].start + timedelta(days=3)
    [stats] = correlate(
        onsets,
        occurrences,
        [Subject("livestream", series, "Opposition livestream")],
        service="telegram",
        cc="KZ",
        window=timedelta(hours=2),
        now=now,
    )
    assert (stats.hits, stats.events) == (9, 12)
    assert stats.line.startswith("followed 9 of the last 12 livestreams of this series; p < 0.001")


_minutes = st.integers(0, 2000)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_minutes, st.integers(1, 300)), max_size=12), _minutes, st.integers(1, 300)
)
def test_busy_spans_agree_with_checking_every_event(
    spans: list[tuple[int, int]], start: int, length: int
) -> None:
    def at(m: int) -> datetime:
        return DAY0 + timedelta(minutes=m)

    busy = [_Window(at(a), at(a + n)) for a, n in spans]
    w = _Window(at(start), at(start + length))
    naive = any(w.start < b.end and b.start < w.end for b in busy)
    assert _Busy(busy).overlaps(w) == naive


@settings(max_examples=200, deadline=None)
@given(st.lists(_minutes, max_size=12), _minutes, st.integers(1, 300))
def test_onset_search_agrees_with_a_scan(onsets: list[int], start: int, length: int) -> None:
    times = sorted(DAY0 + timedelta(minutes=m) for m in onsets)
    w = _Window(DAY0 + timedelta(minutes=start), DAY0 + timedelta(minutes=start + length))
    assert _has_onset(w, times) == any(w.start <= t < w.end for t in times)
