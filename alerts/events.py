"""Importers for announced events: iCalendar (a VEVENT subset), RSS 2.0 / Atom, and JSON.

Every importer returns validated `Event`s or raises `EventFeedError` naming where the
problem is (line, item, field), so an operator can fix the feed.
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.model import EVENT_KINDS, Event

NS = "https://censorwatch.org/ns/events"  # <cw:country>, <cw:kind>, <cw:start>, <cw:end>
ATOM = "http://www.w3.org/2005/Atom"


class EventFeedError(ValueError):
    """A feed that cannot be imported; the message says where and why."""

    def __init__(self, message: str, *, where: str = "", field: str = "") -> None:
        super().__init__(message)
        self.where = where
        self.field = field


# --- shared validation --------------------------------------------------------------------


@dataclass
class _Draft:
    where: str
    id: str | None = None
    kind: str | None = None
    title: str | None = None
    cc: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    duration: timedelta | None = None
    source_url: str | None = None
    tags: tuple[str, ...] = ()


def _fail(where: str, field: str, problem: str) -> EventFeedError:
    return EventFeedError(f"{where}: {field}: {problem}", where=where, field=field)


def _finish(d: _Draft, default_kind: str = "other") -> Event:
    title = (d.title or "").strip()
    if not title:
        raise _fail(d.where, "title", "missing")
    if d.start is None:
        raise _fail(d.where, "start", "missing")
    cc = (d.cc or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", cc):
        raise _fail(d.where, "country", f"need a two-letter country code, got {d.cc!r}")
    kind = (d.kind or default_kind).strip().lower()
    if kind not in EVENT_KINDS:
        raise _fail(d.where, "kind", f"{kind!r} is not one of {', '.join(EVENT_KINDS)}")
    end = d.end or (d.start + d.duration if d.duration is not None else None)
    if end is not None and end < d.start:
        raise _fail(d.where, "end", "before start")
    ident = d.id or _derived_id(title, cc, d.start)
    return Event(ident, kind, title, cc, d.start, end, d.source_url or None, d.tags)


def _derived_id(title: str, cc: str, start: datetime) -> str:
    digest = hashlib.sha256(f"{title}|{cc}|{start.isoformat()}".encode()).hexdigest()
    return f"ev-{digest[:16]}"


def _iso_time(text: str, where: str, field: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(where, field, f"not an ISO 8601 time: {text!r}") from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# --- iCalendar ----------------------------------------------------------------------------


def parse_ical(text: str, default_kind: str = "other") -> list[Event]:
    """VEVENTs of an iCalendar file (RFC 5545 subset); floating times are taken as UTC."""
    events: list[Event] = []
    draft: _Draft | None = None
    seen_calendar = False
    for lineno, name, params, value in _content_lines(text):
        where = f"line {lineno}"
        if name == "BEGIN" and value.upper() == "VCALENDAR":
            seen_calendar = True
        elif name == "BEGIN" and value.upper() == "VEVENT":
            if draft is not None:
                raise _fail(where, "BEGIN", "VEVENT inside VEVENT")
            draft = _Draft(where=f"VEVENT at line {lineno}")
        elif name == "END" and value.upper() == "VEVENT":
            if draft is None:
                raise _fail(where, "END", "END:VEVENT without BEGIN:VEVENT")
            events.append(_finish(draft, default_kind))
            draft = None
        elif draft is not None:
            _ical_property(draft, name, params, value, where)
    if not seen_calendar:
        raise EventFeedError("line 1: not an iCalendar file (no BEGIN:VCALENDAR)", where="line 1")
    if draft is not None:
        raise _fail(draft.where, "END", "VEVENT never closed")
    return events


def _content_lines(text: str) -> Iterator[tuple[int, str, dict[str, str], str]]:
    """Unfolded content lines as (first physical line number, NAME, params, value)."""
    logical: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and logical:
            first, sofar = logical[-1]
            logical[-1] = (first, sofar + raw[1:])
        elif raw.strip():
            logical.append((n, raw))
    for n, line in logical:
        yield (n, *_split_content_line(line, n))


_CONTENT_LINE = re.compile(r'([A-Za-z0-9-]+)((?:;(?:"[^"]*"|[^:";])*)*):(.*)$')


def _split_content_line(line: str, n: int) -> tuple[str, dict[str, str], str]:
    head = _CONTENT_LINE.match(line)
    if head is None:
        raise _fail(f"line {n}", "content line", f"expected NAME[;PARAM=V]:VALUE, got {line!r}")
    params: dict[str, str] = {}
    for part in filter(None, head.group(2).split(";")):
        key, sep, val = part.partition("=")
        if not sep:
            raise _fail(f"line {n}", key, "parameter without a value")
        params[key.upper()] = val.strip('"')
    return head.group(1).upper(), params, head.group(3)


def _ical_property(d: _Draft, name: str, params: dict[str, str], value: str, where: str) -> None:
    if name == "UID":
        d.id = _unescape(value)
    elif name == "SUMMARY":
        d.title = _unescape(value)
    elif name == "DTSTART":
        d.start = _ical_time(value, params, where, name)
    elif name == "DTEND":
        d.end = _ical_time(value, params, where, name)
    elif name == "DURATION":
        d.duration = _ical_duration(value, where)
    elif name == "URL":
        d.source_url = value.strip()
    elif name == "CATEGORIES":
        d.tags = d.tags + tuple(t.strip() for t in _split_text_list(value) if t.strip())
    elif name == "X-CENSORWATCH-KIND":
        d.kind = value
    elif name == "X-CENSORWATCH-COUNTRY":
        d.cc = value


def _unescape(value: str) -> str:
    return re.sub(
        r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value
    ).strip()


def _split_text_list(value: str) -> list[str]:
    return [_unescape(p) for p in re.split(r"(?<!\\),", value)]


def _ical_time(value: str, params: dict[str, str], where: str, field: str) -> datetime:
    value = value.strip()
    try:
        if params.get("VALUE", "").upper() == "DATE" or re.fullmatch(r"\d{8}", value):
            return datetime.strptime(value, "%Y%m%d").replace(tzinfo=UTC)
        local = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise _fail(where, field, f"not an iCalendar date-time: {value!r}") from exc
    if value.endswith("Z"):
        return local.replace(tzinfo=UTC)
    if "TZID" in params:
        try:
            zone = ZoneInfo(params["TZID"])
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise _fail(where, field, f"unknown TZID {params['TZID']!r}") from exc
        return local.replace(tzinfo=zone).astimezone(UTC)
    return local.replace(tzinfo=UTC)


_DURATION = re.compile(
    r"([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", re.IGNORECASE
)


def _ical_duration(value: str, where: str) -> timedelta:
    m = _DURATION.match(value.strip())
    if m is None or value.strip().upper().rstrip("T").endswith("P"):
        raise _fail(where, "DURATION", f"not an iCalendar duration: {value!r}")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in m.groups()[1:])
    span = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return -span if m.group(1) == "-" else span


# --- RSS 2.0 / Atom -----------------------------------------------------------------------


def parse_feed(text: str) -> list[Event]:
    """Items of an RSS 2.0 or Atom feed; country and kind from <cw:*> or category prefixes."""
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise EventFeedError("feed declares a DTD or entities; refused", field="DOCTYPE")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, col = exc.position
        raise EventFeedError(
            f"line {line}, column {col}: not well-formed XML ({exc})", where=f"line {line}"
        ) from exc
    if root.tag == "rss":
        return [_rss_item(item, i) for i, item in enumerate(root.iter("item"), start=1)]
    if root.tag == f"{{{ATOM}}}feed":
        return [_atom_entry(e, i) for i, e in enumerate(root.iter(f"{{{ATOM}}}entry"), start=1)]
    raise EventFeedError(f"root element {root.tag!r} is neither RSS 2.0 nor Atom", field="root")


def _rss_item(item: ET.Element, index: int) -> Event:
    where = f"item {index}"
    d = _Draft(where=where, title=item.findtext("title"), source_url=item.findtext("link"))
    d.id = item.findtext("guid") or d.source_url
    categories = [c.text.strip() for c in item.iter("category") if c.text]
    _apply_extensions(d, item, categories)
    if d.start is None and item.findtext("pubDate"):
        d.start = _rfc822(item.findtext("pubDate") or "", where)
    return _finish(d)


def _atom_entry(entry: ET.Element, index: int) -> Event:
    where = f"entry {index}"
    link = entry.find(f"{{{ATOM}}}link")
    d = _Draft(where=where, title=entry.findtext(f"{{{ATOM}}}title"))
    d.source_url = link.get("href") if link is not None else None
    d.id = entry.findtext(f"{{{ATOM}}}id") or d.source_url
    categories = [c.get("term", "") for c in entry.iter(f"{{{ATOM}}}category")]
    _apply_extensions(d, entry, categories)
    published = entry.findtext(f"{{{ATOM}}}published") or entry.findtext(f"{{{ATOM}}}updated")
    if d.start is None and published:
        d.start = _iso_time(published, where, "published")
    return _finish(d)


def _apply_extensions(d: _Draft, element: ET.Element, categories: list[str]) -> None:
    tags = []
    for category in filter(None, categories):
        prefix, sep, rest = category.partition(":")
        if sep and prefix.lower() == "country":
            d.cc = rest
        elif sep and prefix.lower() == "kind":
            d.kind = rest
        else:
            tags.append(category)
    d.tags = tuple(tags)
    d.cc = element.findtext(f"{{{NS}}}country") or d.cc
    d.kind = element.findtext(f"{{{NS}}}kind") or d.kind
    start, end = element.findtext(f"{{{NS}}}start"), element.findtext(f"{{{NS}}}end")
    d.start = _iso_time(start, d.where, "start") if start else None
    d.end = _iso_time(end, d.where, "end") if end else None


def _rfc822(text: str, where: str) -> datetime:
    try:
        t = parsedate_to_datetime(text)
    except (TypeError, ValueError) as exc:
        raise _fail(where, "pubDate", f"not an RFC 822 date: {text!r}") from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# --- JSON ---------------------------------------------------------------------------------

JSON_FIELDS = {"id", "kind", "title", "cc", "country", "start", "end", "duration", "source_url"}
JSON_FIELDS |= {"url", "tags"}


def parse_json(text: str) -> list[Event]:
    """A JSON list of events, or {"events": [...]}; times ISO 8601, duration in seconds."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventFeedError(
            f"line {exc.lineno}, column {exc.colno}: not JSON ({exc.msg})",
            where=f"line {exc.lineno}",
        ) from exc
    items = doc.get("events") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise EventFeedError('expected a list of events or {"events": [...]}', field="events")
    return [_json_event(item, i) for i, item in enumerate(items, start=1)]


def _json_event(item: Any, index: int) -> Event:
    where = f"event {index}"
    if not isinstance(item, dict):
        raise _fail(where, "event", "not an object")
    unknown = sorted(set(item) - JSON_FIELDS)
    if unknown:
        raise _fail(where, unknown[0], "unknown field")
    d = _Draft(where=where)
    d.id = _json_str(item, "id", where)
    d.kind = _json_str(item, "kind", where)
    d.title = _json_str(item, "title", where)
    d.cc = _json_str(item, "cc", where) or _json_str(item, "country", where)
    d.source_url = _json_str(item, "source_url", where) or _json_str(item, "url", where)
    start, end = _json_str(item, "start", where), _json_str(item, "end", where)
    d.start = _iso_time(start, where, "start") if start else None
    d.end = _iso_time(end, where, "end") if end else None
    d.duration = _json_duration(item.get("duration"), where)
    d.tags = _json_tags(item.get("tags"), where)
    return _finish(d)


def _json_str(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(where, key, f"expected a string, got {type(value).__name__}")
    return value


def _json_duration(value: Any, where: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _fail(where, "duration", f"expected seconds (a non-negative number), got {value!r}")
    return timedelta(seconds=value)


def _json_tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _fail(where, "tags", "expected a list of strings")
    return tuple(value)
