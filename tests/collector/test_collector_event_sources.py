"""The event-source poller against real HTTP servers on loopback: validators and 304,
cancellations, failures that keep what was imported, hostile feeds, and replicas that
poll each source once (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from feed_server import FeedServer, feed_server, hanging_server

from alerts.events import options_for
from alerts.model import Event
from collector.alerting.feeds import FetchLimits
from collector.alerting.sources import Poller, PollOutcome, PollSettings
from collector.store import events as eventstore
from collector.store import migrate
from collector.store import sources as sourcestore
from collector.store.db import Database
from collector.store.sources import NewSource, Source

FEEDS = Path(__file__).parent.parent / "alerts" / "feeds"
MAY = dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)
KEYWORDS = options_for("KZ", None, [("livestream", "livestream"), ("protest", "protest")])
GOOGLE = "5kq3b0r1e9o2s8v7l6m4n3p2q1@google.com"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def settings(timeout: float = 5.0, max_bytes: int = 1 << 20, **limits: object) -> PollSettings:
    fetch = FetchLimits(timeout, max_bytes, **limits)  # type: ignore[arg-type]
    return PollSettings(0.05, fetch, dt.timedelta(days=365), dt.timedelta(days=42))


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'sources.db'}")
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with feed_server() as running:
        yield running


async def add_source(db: Database, url: str, now: dt.datetime, interval: int = 600) -> Source:
    wanted = NewSource(url, None, KEYWORDS.cc, KEYWORDS.kind, KEYWORDS.keywords, interval)
    return await db.transaction(lambda c: sourcestore.add(c, wanted, now))


async def stored(db: Database) -> list[Event]:
    async with db.reading() as connection:
        return await eventstore.listing(connection)


async def source_row(db: Database, source_id: str) -> Source:
    async with db.reading() as connection:
        found = await sourcestore.one(connection, source_id)
    assert found is not None
    return found


async def test_etag_304_cancellations_and_a_failure_that_keeps_the_events(
    db: Database, server: FeedServer
) -> None:
    server.feeds["cal"] = (FEEDS / "google-streams.ics").read_text()
    clock = Clock(MAY)
    source = await add_source(db, server.url("/feed/cal"), clock.now)
    poller = Poller(db, settings(allow_private=True), clock=clock)

    [first] = await poller.run_once()
    assert (first.outcome, first.events) == ("ok", 13), first
    streams = [e for e in await stored(db) if e.series == GOOGLE]
    assert len(streams) == 12
    assert {e.kind for e in streams} == {"livestream"}

    assert await poller.run_once() == []  # not due yet
    clock.advance(600)
    [second] = await poller.run_once()
    assert second.outcome == "not_modified"
    assert server.not_modified["cal"] == 1
    assert len(await stored(db)) == 13

    server.feeds["cal"] = (FEEDS / "google-streams-v2.ics").read_text()
    clock.advance(600)
    [third] = await poller.run_once()
    assert (third.outcome, third.events, third.removed) == ("ok", 11, 2), third
    days = {e.start.day for e in await stored(db) if e.series == GOOGLE and e.start.month == 5}
    assert 8 not in days
    assert 20 not in days
    succeeded = await source_row(db, source.id)

    server.failing.add("cal")
    clock.advance(600)
    [fourth] = await poller.run_once()
    assert (fourth.outcome, fourth.reason) == ("error", "http_status")
    assert len(await stored(db)) == 11  # nothing lost
    row = await source_row(db, source.id)
    assert row.last_error == "HTTP 500 Internal Server Error"
    assert row.last_success_at == succeeded.last_success_at
    assert (row.event_count, row.polls, row.failures) == (11, 4, 1)
    assert row.etag == succeeded.etag  # the next success can still be a 304

    server.failing.clear()
    clock.advance(600)
    [fifth] = await poller.run_once()
    assert fifth.outcome == "not_modified"
    assert (await source_row(db, source.id)).last_error is None


@pytest.mark.parametrize(
    ("path", "reason", "says"),
    [
        ("/slow", "timeout", "no complete answer within 1 s"),
        ("/drip", "timeout", "no complete answer within 1 s"),
        ("/huge", "too_large", "more than 262144 bytes"),
        ("/fail", "http_status", "HTTP 503"),
        ("/feed/deep", "feed", "nested deeper"),
        ("/feed/entities", "feed", "DTD or entities"),
        ("/feed/baddate", "feed", "DTSTART"),
        ("/feed/html", "feed", "neither RSS nor Atom"),
        ("/to/http://localhost:{port}/feed/good", "address", "not a public address"),
        ("/to/http://169.254.169.254/latest/meta-data/", "address", "169.254.169.254"),
    ],
)
async def test_hostile_or_broken_feeds_are_a_recorded_error(
    sqlite_db: Database, server: FeedServer, path: str, reason: str, says: str
) -> None:
    server.feeds["deep"] = "<rss>" + "<a>" * 200 + "</a>" * 200 + "</rss>"
    server.feeds["entities"] = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        "<rss><channel><item><title>&b;</title></item></channel></rss>"
    )
    server.feeds["baddate"] = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nSUMMARY:x\r\nDTSTART:next friday\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    server.feeds["good"] = (FEEDS / "ghost.rss").read_text()
    server.feeds["html"] = "<html><body><p>Moved to our new site</p></body></html>"
    clock = Clock(MAY)
    url = server.url(path.format(port=server.port))
    source = await add_source(sqlite_db, url, clock.now)
    await sqlite_db.transaction(
        lambda c: eventstore.upsert(c, sqlite_db, [_kept_event()], clock.now, source.id)
    )
    # private addresses allowed for the first hop only (the test server), not beyond
    limits = {"trusted_hosts": frozenset({"127.0.0.1"})}
    poller = Poller(sqlite_db, settings(timeout=1.0, max_bytes=256 * 1024, **limits), clock=clock)
    [outcome] = await poller.run_once()
    assert (outcome.outcome, outcome.reason) == ("error", reason), outcome
    assert says in outcome.message, outcome
    row = await source_row(sqlite_db, source.id)
    assert row.last_error is not None
    assert says in row.last_error
    assert [e.id for e in await stored(sqlite_db)] == ["kept-1"]
    clock.advance(600)
    [again] = await poller.run_once()  # the claim was released: the next poll happens
    assert again.outcome == "error"


def _kept_event() -> Event:
    start = MAY + dt.timedelta(days=2)
    return Event("kept-1", "protest", "Kept", "KZ", start, None, None, ())


async def test_a_hanging_server_times_out(sqlite_db: Database) -> None:
    async with hanging_server() as port:
        source = await add_source(sqlite_db, f"http://127.0.0.1:{port}/cal.ics", MAY)
        poller = Poller(sqlite_db, settings(timeout=0.5, allow_private=True), clock=Clock(MAY))
        outcome = await poller.poll(source)
    assert (outcome.outcome, outcome.reason) == ("error", "timeout")


async def test_private_addresses_are_refused_unless_allowed(
    sqlite_db: Database, server: FeedServer
) -> None:
    server.feeds["good"] = (FEEDS / "ghost.rss").read_text()
    for url, reason in (
        (server.url("/feed/good"), "address"),
        (server.url("/feed/good", host="localhost"), "address"),
        (f"http://[::1]:{server.port}/feed/good", "address"),
        ("http://10.1.2.3/feed", "address"),
        ("file:///etc/passwd", "address"),
    ):
        source = await add_source(sqlite_db, url, MAY)
        outcome = await Poller(sqlite_db, settings(), clock=Clock(MAY)).poll(source)
        assert (outcome.outcome, outcome.reason) == ("error", reason), (url, outcome)
    allowed = await Poller(sqlite_db, settings(allow_private=True), clock=Clock(MAY)).poll(
        await add_source(sqlite_db, server.url("/feed/good"), MAY)
    )
    assert allowed.outcome == "ok"


async def test_replicas_poll_each_source_once(db: Database, db_url: str) -> None:
    async with feed_server() as server:
        names = [f"cal{i}" for i in range(6)]
        for name in names:
            server.feeds[name] = (FEEDS / "nextcloud-protests.ics").read_text()
            await add_source(db, server.url(f"/feed/{name}"), MAY)
        replicas = [Database(db_url) for _ in range(3)]
        try:
            pollers = [Poller(r, settings(allow_private=True), clock=Clock(MAY)) for r in replicas]
            rounds: list[list[PollOutcome]] = []
            for _ in range(3):  # BATCH sources per replica per tick
                rounds.extend(await asyncio.gather(*(p.run_once() for p in pollers)))
        finally:
            for replica in replicas:
                await replica.close()
    polled = [o.source_id for outcomes in rounds for o in outcomes]
    assert len(polled) == len(set(polled)) == 6
    assert all(server.requests[name] == 1 for name in names), server.requests
