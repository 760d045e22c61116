"""Calendars and feeds as Google Calendar, Outlook, Nextcloud, WordPress, Ghost and Jekyll
publish them: recurrence, exceptions, time zones, and no project-specific properties."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.events import EventFeedError, Horizon, ImportOptions, options_for, parse, sniff

FEEDS = Path(__file__).parent / "feeds"
SPRING = Horizon(datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))
NEWSROOM = options_for(
    "KZ",
    "other",
    [("livestream", "livestream"), ("эфир", "livestream"), ("stream", "livestream"),
     ("protest", "protest"), ("election", "election")],
)  # fmt: skip
GOOGLE_UID = "5kq3b0r1e9o2s8v7l6m4n3p2q1@google.com"


def read(name: str) -> str:
    return (FEEDS / name).read_text(encoding="utf-8")


def load(name: str, options: ImportOptions = NEWSROOM, horizon: Horizon = SPRING) -> list:  # type: ignore[type-arg]
    text = read(name)
    return parse(text, sniff(text, name=name), options, horizon).events


def test_google_weekly_rrule_gives_twelve_occurrences_with_stable_ids() -> None:
    text = read("google-streams.ics")
    parsed = parse(text, "ical", NEWSROOM, SPRING)
    streams = [e for e in parsed.events if e.series == GOOGLE_UID]
    assert len(streams) == 12
    assert parsed.series == frozenset({GOOGLE_UID})
    assert {e.kind for e in streams} == {"livestream"}  # by the keyword in the title
    assert {e.cc for e in streams} == {"KZ"}  # the import's default country
    assert streams[0].start == datetime(2024, 5, 6, 14, tzinfo=UTC)
    assert streams[0].end == datetime(2024, 5, 6, 16, tzinfo=UTC)
    assert [e.start.strftime("%a") for e in streams[:3]] == ["Mon", "Wed", "Fri"]
    assert streams[0].id == f"{GOOGLE_UID}_20240506T140000Z"
    moved = next(e for e in streams if e.start.day == 15)
    # the override starts an hour late but keeps the id of the occurrence it replaces
    assert moved.start == datetime(2024, 5, 15, 15, tzinfo=UTC)
    assert moved.id == f"{GOOGLE_UID}_20240515T140000Z"
    assert moved.title == "Opposition livestream (starts an hour late)"
    again = parse(text, "ical", NEWSROOM, SPRING)
    assert [e.id for e in again.events] == [e.id for e in parsed.events]
    [protest] = [e for e in parsed.events if e.series is None]
    assert (protest.kind, protest.start) == ("protest", datetime(2024, 5, 25, 6, tzinfo=UTC))


def test_google_exdate_and_cancelled_occurrence_disappear() -> None:
    streams = [e for e in load("google-streams-v2.ics") if e.series == GOOGLE_UID]
    assert len(streams) == 10
    days = {e.start.day for e in streams if e.start.month == 5}
    assert 8 not in days
    assert 20 not in days


def test_the_horizon_bounds_the_expansion() -> None:
    early = Horizon(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 12, tzinfo=UTC))
    streams = [e for e in load("google-streams.ics", horizon=early) if e.series]
    assert [e.start.day for e in streams] == [6, 8, 10]


def test_outlook_windows_zone_long_uid_and_exdate() -> None:
    streams = load("outlook-streams.ics")
    assert len(streams) == 11  # Tuesdays and Thursdays 7 May - 13 June, 21 May excluded
    first = streams[0]
    assert first.start == datetime(2024, 5, 7, 13, tzinfo=UTC)  # 19:00 at UTC+6
    assert first.end == first.start + timedelta(hours=2)
    assert first.kind == "livestream"  # CATEGORIES:Livestream through the keywords
    assert first.title == "Эфир: вечерний стрим"
    assert first.id.startswith("ev-")
    assert len(first.id) <= 128
    assert len({e.series for e in streams}) == 1
    assert datetime(2024, 5, 21, 13, tzinfo=UTC) not in {e.start for e in streams}


def test_nextcloud_all_day_cancelled_and_fortnightly() -> None:
    text = read("nextcloud-protests.ics")
    parsed = parse(text, "ical", options_for("BY", None, NEWSROOM.keywords), SPRING)
    by_title = {e.title: e for e in parsed.events}
    march = by_title["March for free media"]
    assert (march.cc, march.kind) == ("BY", "protest")  # its own country property wins
    assert march.start == datetime(2024, 6, 1, 9, tzinfo=UTC)
    assert "Rally (called off)" not in by_title
    assert parsed.cancelled == frozenset({"7e6d5c4b-3a2f-1e0d-9c8b-7a6f5e4d3c2b"})
    assert by_title["Parliamentary election"].kind == "election"
    streams = [e for e in parsed.events if e.title == "Tuesday stream"]
    assert [e.start.day for e in streams] == [4, 18]  # every other week, inside the horizon
    assert streams[0].end == streams[0].start + timedelta(minutes=90)


def test_nextcloud_without_a_default_country_names_the_entry() -> None:
    text = read("nextcloud-protests.ics")
    with pytest.raises(EventFeedError, match="UID '0c9d8e7f"):
        parse(text, "ical", ImportOptions(), SPRING)


def test_wordpress_events_feed() -> None:
    stream, square = load("wordpress-events.rss")
    assert stream.kind == "livestream"  # category Эфир
    assert stream.start == datetime(2024, 5, 10, 14, tzinfo=UTC)  # <ev:startdate>
    assert stream.end == datetime(2024, 5, 10, 16, tzinfo=UTC)
    assert stream.id.startswith("https://news.example.org/?post_type=tribe_events&p=1234") or (
        stream.id.startswith("ev-")
    )
    assert (square.kind, square.cc) == ("protest", "KG")  # country:KG category wins
    assert square.start == datetime(2024, 5, 7, 12, 30, tzinfo=UTC)  # pubDate


def test_ghost_feed_kind_from_title_keyword() -> None:
    stream, digest = load("ghost.rss")
    assert stream.kind == "livestream"
    assert stream.id == "6634f1c2a1b2c3d4e5f6a7b8"
    assert stream.tags == ("News",)
    assert digest.kind == "other"


def test_jekyll_atom_feed() -> None:
    [call] = load("jekyll-calls.atom")
    assert (call.kind, call.cc) == ("protest", "BY")
    assert call.start == datetime(2024, 5, 8, 7, tzinfo=UTC)
    assert call.source_url == "https://calls.example.org/2024/05/08/saturday.html"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("google-streams.ics", "ical"), ("ghost.rss", "rss"), ("jekyll-calls.atom", "atom")],
)
def test_sniffing_by_content(name: str, fmt: str) -> None:
    assert sniff(read(name)) == fmt
    assert sniff(read(name), name=name) == fmt


def test_options_are_checked() -> None:
    with pytest.raises(EventFeedError, match="two-letter"):
        options_for("Kazakhstan", None)
    with pytest.raises(EventFeedError, match="party"):
        options_for("KZ", None, [("stream", "party")])
    with pytest.raises(EventFeedError, match="kind"):
        options_for("KZ", "concert")


_DAMAGE = ("", ":", ";", "=", "Z", "T", "0", "\\", ",", "<", "&", "99", "TZID=X;")


def _damaged(text: str, rng: random.Random) -> str:
    lines = text.splitlines(True)
    for _ in range(rng.randint(1, 4)):
        if not lines:
            break
        j, roll = rng.randrange(len(lines)), rng.random()
        if roll < 0.3:
            del lines[j]
        elif roll < 0.5:
            lines.insert(j, lines[rng.randrange(len(lines))])
        elif roll < 0.8:
            k = rng.randrange(len(lines[j]) + 1)
            lines[j] = lines[j][:k] + rng.choice(_DAMAGE) + lines[j][k + 1 :]
        else:
            lines[j] = lines[j].replace("2024", rng.choice(["0000", "9999", "20241", "-1"]))
    return "".join(lines)


def test_damaged_exports_fail_only_with_a_feed_error() -> None:
    """Lines deleted, repeated and corrupted in every fixture (a fixed seed): the libraries
    underneath fail in many ways (AttributeError, OverflowError, …); the import only ever
    says EventFeedError, which the API turns into a 400 and the poller into a recorded
    error."""
    rng = random.Random(7)
    texts = [p.read_text(encoding="utf-8") for p in sorted(FEEDS.iterdir())]
    wide = Horizon(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    for _ in range(600):
        text = _damaged(rng.choice(texts), rng)
        with contextlib.suppress(EventFeedError):
            parse(text, sniff(text), NEWSROOM, wide)
