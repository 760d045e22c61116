"""Announced events from the calendars and feeds newsrooms already keep.

iCalendar is read with ``icalendar`` (RFC 5545: folding, escaping, VTIMEZONE), repaired
with ``x-wr-timezone`` (Google Calendar's ``X-WR-TIMEZONE``) and expanded with
``recurring-ical-events`` (RRULE, RDATE, EXDATE, modified and cancelled occurrences); RSS
and Atom in every dialect with ``feedparser``, after ``defusedxml`` has refused DTDs,
entities and absurd nesting; JSON with the standard library.

A recurring entry becomes one `Event` per occurrence inside a bounded `Horizon`, each with
an id made from the series UID and the occurrence's original start (its RECURRENCE-ID), so
re-importing changes nothing and a moved occurrence keeps its id. The `Parsed` result also
says which series it covered, so the store can drop occurrences that were cancelled
(EXDATE, ``STATUS:CANCELLED``) since the last import.

Country and kind come from the entry when it says (``X-CENSORWATCH-COUNTRY``/``-KIND``,
``<cw:country>``/``<cw:kind>``, ``country:KZ``/``kind:protest`` categories), otherwise from
the `ImportOptions` of the import or source: a default country, a default kind, and
keywords that map categories or titles to kinds. Every failure is an `EventFeedError`
naming the entry and field, so an operator can fix the feed.
"""

from __future__ import annotations

import re
from typing import Final

from alerts.events.entries import (
    MAX_EVENTS,
    NS,
    EventFeedError,
    Horizon,
    ImportOptions,
    Parsed,
    occurrence_id,
    options_for,
    stable_id,
)
from alerts.events.feeds import parse_feed
from alerts.events.ical import parse_ical
from alerts.events.json_events import event_from_mapping, parse_json

__all__ = [
    "FORMATS", "MAX_EVENTS", "NS", "EventFeedError", "Horizon", "ImportOptions", "Parsed",
    "event_from_mapping", "occurrence_id", "options_for", "parse", "parse_feed", "parse_ical",
    "parse_json", "sniff", "stable_id",
]  # fmt: skip

FORMATS: Final = ("ical", "rss", "atom", "json")
_SUFFIXES: Final = {
    **{".ics": "ical", ".ical": "ical", ".ifb": "ical", ".rss": "rss"},
    **{".xml": "rss", ".atom": "atom", ".json": "json"},
}


def sniff(text: str, content_type: str = "", name: str = "") -> str:
    """The format of a feed: by file suffix, then Content-Type, then its first characters."""
    suffix = name[name.rfind(".") :].lower() if "." in name.rsplit("/", 1)[-1] else ""
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    lowered, head = content_type.lower(), text.lstrip()[:2048]
    if "calendar" in lowered or head.upper().startswith("BEGIN:VCALENDAR"):
        return "ical"
    if "json" in lowered or head[:1] in ("[", "{"):
        return "json"
    if "xml" in lowered or "rss" in lowered or "atom" in lowered or head.startswith("<"):
        root = re.search(r"<(rss|feed|rdf:RDF)[\s>]", head)
        return "atom" if root is not None and root.group(1) == "feed" else "rss"
    raise EventFeedError("cannot tell the feed's format: name one of ical, rss, atom, json")


def parse(text: str, fmt: str, options: ImportOptions, horizon: Horizon) -> Parsed:
    """A feed in one of `FORMATS`; at most ``options.max_events`` events."""
    if fmt == "ical":
        parsed = parse_ical(text, options, horizon)
    elif fmt in ("rss", "atom"):
        parsed = Parsed(parse_feed(text, options), horizon)
    elif fmt == "json":
        parsed = Parsed(parse_json(text, options), horizon)
    else:
        raise EventFeedError(f"format: {fmt[:16]!r} is not one of {', '.join(FORMATS)}")
    if len(parsed.events) > options.max_events:
        raise EventFeedError(f"more than {options.max_events} events; refused", field="events")
    return parsed
