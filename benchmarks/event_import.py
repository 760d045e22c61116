"""What importing calendars and feeds costs, and how fast hostile ones are refused.

    python -m benchmarks.event_import [--runs R]

Pure parsing (no database): the issue's weekly RRULE (12 occurrences), a calendar that
expands to just under the 5,000-event limit, RRULEs that would expand to millions (refused
by counting with dateutil before expanding), an RSS feed of 1,000 items, and the
correlation statistic over a year of history (a series; and 500 one-off events at
scattered times, the costly case for the comparison windows). Figures are the median of R runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from alerts.correlation import Subject, correlate
from alerts.events import EventFeedError, Horizon, ImportOptions, parse
from alerts.model import Event, Incident

HORIZON = Horizon(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
OPTIONS = ImportOptions(cc="KZ", kind="livestream")


def calendar(rule: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:s@example\r\nSUMMARY:Stream\r\n"
        f"DTSTART;TZID=Asia/Almaty:20240506T190000\r\nDURATION:PT2H\r\nRRULE:{rule}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def rss(items: int) -> str:
    body = "".join(
        f"<item><title>Stream {i}</title><guid>g{i}</guid>"
        f"<pubDate>Mon, 06 May 2024 14:{i % 60:02d}:00 GMT</pubDate></item>"
        for i in range(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{body}</channel></rss>'


def timed(work: Callable[[], object], runs: int) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        try:
            result = work()
            outcome = f"{len(result.events)} events" if hasattr(result, "events") else "done"
        except EventFeedError as exc:
            outcome = f"refused: {exc}"
        times.append(time.perf_counter() - started)
    return statistics.median(times), outcome


def correlation_case() -> Callable[[], object]:
    start = datetime(2024, 1, 1, 19, tzinfo=UTC)
    events = [
        Event(
            f"s_{d}", "livestream", "Stream", "KZ", start + timedelta(days=d), None, None, (), "s"
        )
        for d in range(0, 365, 2)
    ]
    incidents = [
        Incident(f"i{d}", "blocking", "telegram", "KZ", (1,), e.start + timedelta(minutes=5),
                 e.start, None, (), 1.0, 3, (), (), "1")
        for d, e in enumerate(events) if d % 3
    ]  # fmt: skip
    now = start + timedelta(days=366)

    def run() -> object:
        return correlate(
            incidents, events, [Subject("livestream", "s")], service="telegram", cc="KZ",
            window=timedelta(hours=6), now=now,
        )  # fmt: skip

    return run


def scattered_case() -> Callable[[], object]:
    """500 one-off announcements at scattered times (an RSS source's items): every time of
    day they start at is a comparison time, 365 days of them."""
    rng = random.Random(1)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = [
        Event(f"o{i}", "other", "x", "KZ", start + timedelta(minutes=rng.randrange(525_600)),
              None, None, ())
        for i in range(500)
    ]  # fmt: skip
    incidents = [
        Incident(f"i{d}", "blocking", "telegram", "KZ", (1,), start + timedelta(days=d, hours=3),
                 start, None, (), 1.0, 3, (), (), "1")
        for d in range(0, 365, 7)
    ]  # fmt: skip
    now = start + timedelta(days=366)

    def run() -> object:
        return correlate(
            incidents, events, [Subject("other")], service="telegram", cc="KZ",
            window=timedelta(hours=6), now=now,
        )  # fmt: skip

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    cases: list[tuple[str, Callable[[], object]]] = [
        ("weekly RRULE, COUNT=12", lambda: parse(calendar("FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=12"), "ical", OPTIONS, HORIZON)),
        ("20 a day from 6 May (4,786 occurrences)", lambda: parse(calendar("FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(1, 21)))), "ical", OPTIONS, HORIZON)),
        ("FREQ=HOURLY (~5,700 in the horizon)", lambda: parse(calendar("FREQ=HOURLY"), "ical", OPTIONS, HORIZON)),
        ("FREQ=SECONDLY (21 million)", lambda: parse(calendar("FREQ=SECONDLY"), "ical", OPTIONS, HORIZON)),
        ("RSS, 1,000 items", lambda: parse(rss(1000), "rss", OPTIONS, HORIZON)),
        ("series statistic, 183 occurrences in a year", correlation_case()),
        ("kind statistic, 500 scattered one-off events", scattered_case()),
    ]  # fmt: skip
    print(f"{'case':<46} {'median':>10}  outcome")
    for name, work in cases:
        seconds, outcome = timed(work, runs)
        print(f"{name:<46} {seconds * 1000:>8.1f} ms  {outcome[:70]}")


if __name__ == "__main__":
    main()
