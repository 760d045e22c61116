"""The pure decisions: scheduler, backoff plan, spool bounds, settling a batch."""

from __future__ import annotations

import datetime as dt
import random
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probe.daemon import config
from probe.daemon.backoff import MAX_RETRY_AFTER, Backoff, parse_retry_after
from probe.daemon.client import BatchResult, ItemResult
from probe.daemon.schedule import Plan, Scheduler, Window
from probe.daemon.spool import Item, Limits, Pending, choose_drops
from probe.daemon.upload import settle

SERVICES = {"telegram": "messenger", "whatsapp": "messenger", "youtube": "video"}


def test_categories_have_their_own_intervals() -> None:
    plan = Plan(interval=900, categories={"messenger": 300})
    s = Scheduler(plan, SERVICES, now=0.0)
    first = s.take_due(0.0)
    assert first is not None
    assert set(first.services) == set(SERVICES)
    s.finished(first, 10.0)
    assert s.take_due(309.0) is None
    second = s.take_due(310.0)
    assert second is not None
    assert set(second.services) == {"telegram", "whatsapp"}


def test_a_service_is_never_in_two_rounds_and_rounds_are_bounded() -> None:
    s = Scheduler(Plan(interval=1, max_rounds=2, max_services_per_round=1), SERVICES, now=0.0)
    a, b = s.take_due(0.0), s.take_due(0.0)
    assert a is not None
    assert b is not None
    assert not set(a.services) & set(b.services)
    assert s.take_due(5.0) is None  # two rounds running: no third
    assert s.next_due(0.0) is None  # and nothing to wake for until one finishes
    s.finished(a, 5.0)
    c = s.take_due(5.0)
    assert c is not None
    assert not set(c.services) & set(b.services)


@given(
    jitter=st.floats(0, 100),
    seed=st.integers(0, 2**32),
    steps=st.lists(st.floats(0, 50), min_size=1, max_size=30),
)
def test_schedule_properties(jitter: float, seed: int, steps: list[float]) -> None:
    plan = Plan(interval=60, jitter=jitter, categories={"messenger": 20}, max_rounds=2)
    s = Scheduler(plan, SERVICES, now=0.0, rng=random.Random(seed))
    assert all(0 <= t <= jitter for t in s.due_times(0.0).values())  # first runs spread out
    now, running = 0.0, []
    for step in steps:
        now += step
        if (r := s.take_due(now)) is not None:
            names = [n for x in running for n in x.services]
            assert not set(r.services) & set(names)
            running.append(r)
        assert len(running) <= plan.max_rounds
        if running and step > 25:
            done = running.pop(0)
            s.finished(done, now)
            for name in done.services:
                gap = s.due_times(now)[name] - now
                base = plan.interval_for(SERVICES[name])
                assert base - 1e-6 <= gap <= base + jitter + 1e-6


@given(
    failures=st.integers(1, 200),
    unit=st.floats(0, 1),
    retry_after=st.none() | st.floats(0, 10_000),
)
def test_backoff_bounds(failures: int, unit: float, retry_after: float | None) -> None:
    plan = Backoff(base=1, factor=2, cap=600)
    wait = plan.delay(failures, unit, retry_after)
    step = min(600, 2 ** (failures - 1))
    assert wait >= step / 2
    assert wait <= max(step, retry_after or 0)
    if retry_after is not None:
        assert wait >= retry_after


@given(st.integers(1, 30))
def test_backoff_grows_until_the_cap(failures: int) -> None:
    plan = Backoff(base=1, factor=2, cap=600)
    assert plan.delay(failures + 1, 0.0) >= plan.delay(failures, 0.0)
    assert plan.delay(failures, 0.99) <= 600


def test_retry_after_forms() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_retry_after_a_reader_cannot_trust_is_ignored_or_bounded() -> None:
    """The header comes off the network: digits ``float`` cannot read ("²", latin-1 in a
    header) are no number, and no answer silences a probe for more than a day."""
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert parse_retry_after("²", now) is None
    assert parse_retry_after("١٢٠", now) is None  # RFC 9110: ASCII digits only
    assert parse_retry_after("9" * 400, now) == MAX_RETRY_AFTER
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now) == MAX_RETRY_AFTER
    assert Backoff().delay(1, 0.5, retry_after=parse_retry_after("86400000", now)) <= 86_400


items = st.lists(
    st.builds(
        Item,
        id=st.uuids().map(str),
        size=st.integers(1, 5000),
        created=st.floats(0, 1000),
        verdict=st.sampled_from(["ok", "blocked", "offline", "anomaly", "down"]),
    ),
    unique_by=lambda i: i.id,
    max_size=40,
)


@given(items, st.integers(0, 50_000), st.floats(1, 1000))
def test_drops_fit_the_bounds_and_spare_evidence_first(
    spooled: list[Item], max_bytes: int, max_age: float
) -> None:
    limits = Limits(max_bytes=max_bytes, max_age_seconds=max_age)
    drops = choose_drops(spooled, limits, now=1000.0)
    gone = set(drops.by_size) | set(drops.by_age)
    kept = [i for i in spooled if i.id not in gone]
    assert sum(i.size for i in kept) <= max_bytes
    assert all(1000.0 - i.created <= max_age for i in kept)
    assert not set(drops.by_size) & set(drops.by_age)
    dropped_size = [i for i in spooled if i.id in drops.by_size]
    if any(i.verdict == "offline" for i in dropped_size):
        assert not any(i.verdict == "ok" for i in kept)  # plain successes went first


def test_nothing_is_dropped_within_bounds() -> None:
    spooled = [Item("a", 10, 0.0, "ok"), Item("b", 10, 1.0, "offline")]
    assert choose_drops(spooled, Limits(max_bytes=20, max_age_seconds=100), 50.0) == (
        choose_drops([], Limits(), 0.0)
    )


def test_settle_acknowledges_only_what_the_collector_said() -> None:
    batch = [Pending("a", b""), Pending("b", b""), Pending("c", b""), Pending("d", b"")]
    result = BatchResult(
        accepted=1,
        duplicate=1,
        rejected=1,
        results=[
            ItemResult(index=0, result="accepted", id="a"),
            ItemResult(index=1, result="duplicate", id="b"),
            ItemResult(index=2, result="rejected", id="c", reason="bad"),
            ItemResult(index=3, result="accepted", id="zzz"),  # not what we sent there
        ],
    )
    outcome = settle(batch, result)
    assert outcome.acknowledged == {"a": "accepted", "b": "duplicate"}
    assert outcome.rejected == {"c": "bad"}
    assert outcome.unanswered == ("d",)


# -- watch windows --------------------------------------------------------------------------

WINDOW = Window(
    start=1000.0,
    end=2000.0,
    services=frozenset({"telegram", "youtube"}),
    intervals={"messenger": 30.0, "*": 60.0},
)


def _run_until(s: Scheduler, until: float, step: float = 1.0) -> dict[str, list[float]]:
    """Drive the scheduler with rounds that take no time; the start times per service."""
    runs: dict[str, list[float]] = {name: [] for name in SERVICES}
    now = 0.0
    while now <= until:
        while (r := s.take_due(now)) is not None:
            for name in r.services:
                runs[name].append(now)
            s.finished(r, now)
        now += step
    return runs


def test_a_window_tightens_only_its_services_and_only_while_it_lasts() -> None:
    plan = Plan(interval=900, categories={"messenger": 300}, windows=(WINDOW,))
    runs = _run_until(Scheduler(plan, {**SERVICES, "youtube": "video"}, now=0.0), 3000.0)
    inside = {n: [t for t in ts if 1000 <= t < 2000] for n, ts in runs.items()}
    assert inside["telegram"][0] == 1000.0  # due at the window's start, not at its normal turn
    assert max(b - a for a, b in pairwise(inside["telegram"])) <= 30.0
    assert max(b - a for a, b in pairwise(inside["youtube"])) <= 60.0
    assert len(inside["whatsapp"]) <= 4  # not in the window: its normal 300 s
    after = [t for t in runs["telegram"] if t >= 2000]
    assert all(b - a >= 300 for a, b in pairwise(after))  # relaxed after the window


def test_a_window_never_goes_below_the_floor() -> None:
    fast = Window(0.0, 600.0, None, {"*": 1.0})
    plan = Plan(interval=900, windows=(fast,), min_interval=45.0)
    runs = _run_until(Scheduler(plan, SERVICES, now=0.0), 600.0)
    for times in runs.values():
        assert all(b - a >= 45.0 for a, b in pairwise(times))


def test_an_ended_window_changes_nothing() -> None:
    plan = Plan(interval=900, windows=(Window(0.0, 10.0, None, {"*": 30.0}),))
    s = Scheduler(plan, SERVICES, now=100.0)
    first = s.take_due(100.0)
    assert first is not None
    s.finished(first, 100.0)
    assert s.take_due(500.0) is None
    due = s.next_due(500.0)
    assert due is not None
    assert due >= 1000.0


@given(
    start=st.floats(0, 2000),
    length=st.floats(1, 3000),
    interval=st.floats(1, 120),
    floor=st.floats(1, 60),
)
def test_window_properties(start: float, length: float, interval: float, floor: float) -> None:
    """Never two runs of a service closer than the floor; outside the window, the normal plan."""
    window = Window(start, start + length, None, {"*": interval})
    plan = Plan(interval=600, windows=(window,), min_interval=floor)
    runs = _run_until(Scheduler(plan, SERVICES, now=0.0), start + length + 1300, step=5.0)
    for times in runs.values():
        gaps = list(pairwise(times))
        assert all(b - a >= min(floor, 600) - 1e-6 for a, b in gaps)
        late = [(a, b) for a, b in gaps if a >= start + length]
        assert all(b - a >= 600 - 1e-6 for a, b in late)


def test_raw_packets_setting_reads_true_false_and_refuses_anything_else(tmp_path: Path) -> None:
    settings = tmp_path / "probe.toml"
    assert config.load(None).raw_packets is True
    settings.write_text("raw_packets = false\n")
    assert config.load(settings).raw_packets is False
    settings.write_text('raw_packets = "no"\n')
    with pytest.raises(config.SettingsError, match="raw_packets: must be true or false"):
        config.load(settings)
