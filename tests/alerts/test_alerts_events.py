"""Event importers: iCalendar, RSS/Atom, JSON — good feeds and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.events import (
    EventFeedError,
    Horizon,
    ImportOptions,
    parse_feed,
    parse_ical,
    parse_json,
)

WIDE = Horizon(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))

ICAL = """BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
UID:stream-1@example.org\r
SUMMARY:Evening stream\\, live from exile\r
DTSTART;TZID=Asia/Almaty:20240501T190000\r
DURATION:PT2H\r
URL:https://example.org/live\r
CATEGORIES:politics,live\r
X-CENSORWATCH-KIND:livestream\r
X-CENSORWATCH-COUNTRY:kz\r
DESCRIPTION:a long description that is folded over\r
  two lines\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:rally\r
SUMMARY:Rally in the sq\r
 uare\r
DTSTART:20240502T120000Z\r
DTEND:20240502T150000Z\r
X-CENSORWATCH-COUNTRY:KZ\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:float\r
SUMMARY:Floating\r
DTSTART:20240503T080000\r
X-CENSORWATCH-COUNTRY:KZ\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_ical_good() -> None:
    stream, rally, floating = parse_ical(ICAL, ImportOptions(kind="protest"), WIDE).events
    assert stream.id == "stream-1@example.org"
    assert stream.title == "Evening stream, live from exile"
    assert stream.kind == "livestream"
    assert stream.cc == "KZ"
    almaty = stream.start.utcoffset()
    assert almaty == timedelta(0)
    assert stream.start in (
        datetime(2024, 5, 1, 14, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 13, 0, tzinfo=UTC),  # tzdata moved Almaty to UTC+5 in 2024
    )
    assert stream.end == stream.start + timedelta(hours=2)
    assert stream.tags == ("politics", "live")
    assert stream.source_url == "https://example.org/live"
    assert rally.title == "Rally in the square"
    assert rally.kind == "protest"
    assert rally.end == datetime(2024, 5, 2, 15, tzinfo=UTC)
    assert floating.start == datetime(2024, 5, 3, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "not an iCalendar file"),
        ("FOO:bar", "not an iCalendar file"),
        ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\n", "not a readable iCalendar file"),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART:2024-05-01\nEND:VEVENT\nEND:VCALENDAR\n",
            "DTSTART: Expected datetime, date, or time",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART:20240501T100000Z\nEND:VEVENT\nEND:VCALENDAR\n",
            "VEVENT 1: country",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nX-CENSORWATCH-COUNTRY:KZ\n"
            "DTSTART;TZID=Mars/Base:20240501T100000\nEND:VEVENT\nEND:VCALENDAR\n",
            "DTSTART: unknown TZID 'Mars/Base'",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nno colon here\nEND:VEVENT\nEND:VCALENDAR\n",
            "content line",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nDTSTART:20240501T100000Z\n"
            "DURATION:PT\nX-CENSORWATCH-COUNTRY:KZ\nEND:VEVENT\nEND:VCALENDAR\n",
            "DURATION",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:r\nSUMMARY:x\nDTSTART:20240501T100000Z\n"
            "RRULE:FREQ=SOMETIMES\nX-CENSORWATCH-COUNTRY:KZ\nEND:VEVENT\nEND:VCALENDAR\n",
            "RRULE",
        ),
        (
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:r\nSUMMARY:x\nDTSTART:20240501T100000Z\n"
            "RRULE:FREQ=SECONDLY\nX-CENSORWATCH-COUNTRY:KZ\nEND:VEVENT\nEND:VCALENDAR\n",
            "more than 5000 occurrences",
        ),
        ("BEGIN:VCALENDAR\n" + "BEGIN:VEVENT\n" * 5000, "not a readable iCalendar file"),
    ],
)
def test_ical_malformed(text: str, message: str) -> None:
    with pytest.raises(EventFeedError, match=message):
        parse_ical(text, ImportOptions(), WIDE)


RSS = """<?xml version="1.0"?>
<rss version="2.0" xmlns:cw="https://censorwatch.org/ns/events">
<channel><title>Announcements</title>
<item>
  <title>Protest call for Saturday</title>
  <link>https://example.org/p/1</link>
  <guid>p1</guid>
  <pubDate>Wed, 01 May 2024 10:00:00 GMT</pubDate>
  <category>country:KZ</category><category>kind:protest</category><category>almaty</category>
  <cw:start>2024-05-04T09:00:00Z</cw:start>
</item>
<item>
  <title>Stream</title>
  <pubDate>Thu, 02 May 2024 19:00:00 +0500</pubDate>
  <cw:country>KZ</cw:country><cw:kind>livestream</cw:kind>
</item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Calls</title>
  <entry>
    <title>Election day</title>
    <id>urn:e:1</id>
    <link href="https://example.org/e"/>
    <published>2024-06-09T03:00:00+06:00</published>
    <category term="country:KZ"/><category term="kind:election"/>
  </entry>
</feed>"""


def test_rss_and_atom_good() -> None:
    protest, stream = parse_feed(RSS)
    assert (protest.id, protest.kind, protest.cc) == ("p1", "protest", "KZ")
    assert protest.start == datetime(2024, 5, 4, 9, tzinfo=UTC)
    assert protest.tags == ("almaty",)
    assert stream.start == datetime(2024, 5, 2, 14, tzinfo=UTC)
    assert stream.id.startswith("ev-")
    [election] = parse_feed(ATOM)
    assert (election.id, election.kind, election.source_url) == (
        "urn:e:1",
        "election",
        "https://example.org/e",
    )
    assert election.start == datetime(2024, 6, 8, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('<!DOCTYPE x [<!ENTITY a "b">]><rss/>', "DTD"),
        ("<rss><channel><item></channel></rss>", "line 1, column"),
        ("<html/>", "neither RSS nor Atom"),
        ("<rss>" + "<a>" * 100 + "</a>" * 100 + "</rss>", "nested deeper"),
        ('<?xml version="1.0"?><!DOCTYPE rss SYSTEM "http://evil.example/x.dtd"><rss/>', "DTD"),
        (RSS.replace("<cw:country>KZ</cw:country>", ""), "item 2: country"),
        (RSS.replace("kind:protest", "kind:party"), "item 1: kind"),
        (RSS.replace("<cw:start>2024-05-04T09:00:00Z", "<cw:start>soon"), "item 1: start"),
        (RSS.replace("Thu, 02 May 2024 19:00:00 +0500", "yesterday"), "item 2: pubDate"),
    ],
)
def test_feed_malformed(text: str, message: str) -> None:
    with pytest.raises(EventFeedError, match=message):
        parse_feed(text)


def test_json_good() -> None:
    text = """{"events": [
      {"id": "s1", "kind": "livestream", "title": "Stream", "cc": "KZ",
       "start": "2024-05-01T19:00:00+05:00", "duration": 7200, "tags": ["live"]},
      {"title": "Rally", "country": "kz", "start": "2024-05-02T12:00:00Z",
       "end": "2024-05-02T15:00:00Z", "url": "https://example.org"}
    ]}"""
    stream, rally = parse_json(text)
    assert stream.start == datetime(2024, 5, 1, 14, tzinfo=UTC)
    assert stream.end == datetime(2024, 5, 1, 16, tzinfo=UTC)
    assert rally.kind == "other"
    assert rally.cc == "KZ"
    assert rally.source_url == "https://example.org"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"events": [', "line 1, column 13: not JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"items": []}', "expected a list"),
        ("[1]", "event 1: event: not an object"),
        (
            '[{"title": "x", "cc": "KZ", "start": "2024-05-01T00:00:00Z", "when": 1}]',
            "event 1: when: unknown field",
        ),
        ('[{"title": "x", "cc": "KZ"}]', "event 1: start: missing"),
        ('[{"title": 3, "cc": "KZ"}]', "event 1: title: expected a string"),
        ('[{"title": "x", "cc": "Kazakhstan", "start": "2024-05-01T00:00:00Z"}]', "country"),
        (
            '[{"title": "x", "cc": "KZ", "start": "2024-05-01T00:00:00Z", "end": "2024-04-01T00:00:00Z"}]',
            "end: must be later than start",
        ),
        (
            '[{"title": "x", "cc": "KZ", "start": "2024-05-01T00:00:00Z", "duration": "2h"}]',
            "duration",
        ),
    ],
)
def test_json_malformed(text: str, message: str) -> None:
    with pytest.raises(EventFeedError, match=message):
        parse_json(text)
