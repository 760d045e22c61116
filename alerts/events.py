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

import calendar
import hashlib
import io
import itertools
import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from xml.etree.ElementTree import ParseError

import feedparser
import icalendar
import recurring_ical_events
import x_wr_timezone
from dateutil.rrule import rrulestr
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from alerts.model import EVENT_KINDS, Event

NS: Final = "https://censorwatch.org/ns/events"  # <cw:country>, <cw:kind>, <cw:start>, <cw:end>
RSS_EVENT_NS: Final = "http://purl.org/rss/1.0/modules/event/"  # <ev:startdate>, <ev:enddate>
FORMATS: Final = ("ical", "rss", "atom", "json")
MAX_EVENTS: Final = 5000  # per feed, occurrences included
MAX_XML_DEPTH: Final = 32
MAX_TITLE: Final = 512
MAX_URL: Final = 2048
MAX_TAGS: Final = 32
MAX_TAG: Final = 64
_ID: Final = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_COUNTRY: Final = re.compile(r"[A-Z]{2}")
_SUFFIXES: Final = {
    **{".ics": "ical", ".ical": "ical", ".ifb": "ical", ".rss": "rss"},
    **{".xml": "rss", ".atom": "atom", ".json": "json"},
}


class EventFeedError(ValueError):
    """A feed that cannot be imported; the message says where and why."""

    def __init__(self, message: str, *, where: str = "", field: str = "") -> None:
        super().__init__(message)
        self.where = where
        self.field = field


@dataclass(frozen=True)
class Horizon:
    """Recurring entries expand to the occurrences that start in [since, until)."""

    since: datetime
    until: datetime

    @classmethod
    def around(cls, now: datetime, past: timedelta, ahead: timedelta) -> Horizon:
        return cls(now - past, now + ahead)


@dataclass(frozen=True)
class ImportOptions:
    """What an entry does not say itself: country, kind, and keywords that name a kind."""

    cc: str | None = None
    kind: str = "other"
    keywords: tuple[tuple[str, str], ...] = ()  # (category or title word, kind), in order
    max_events: int = MAX_EVENTS


@dataclass(frozen=True)
class Parsed:
    """Events of one feed; `series` lists every recurring entry it expanded over `horizon`
    (occurrences of those series in the horizon that are not in `events` were cancelled),
    `cancelled` the ids of single entries marked ``STATUS:CANCELLED``."""

    events: list[Event]
    horizon: Horizon
    series: frozenset[str] = frozenset()
    cancelled: frozenset[str] = frozenset()


def options_for(
    cc: str | None, kind: str | None, keywords: Iterable[tuple[str, str]] = ()
) -> ImportOptions:
    """Checked options; an unknown kind or a country that is not two letters is an error."""
    country = cc.strip().upper() if cc else None
    if country is not None and not _COUNTRY.fullmatch(country):
        raise EventFeedError(f"country: need a two-letter country code, got {cc!r}")
    pairs = tuple((k.strip().casefold(), v.strip().lower()) for k, v in keywords)
    for word, named in ((w, v) for w, v in pairs if v not in EVENT_KINDS):
        raise EventFeedError(f"keyword {word!r}: {named!r} is not one of {', '.join(EVENT_KINDS)}")
    if any(not word for word, _ in pairs):
        raise EventFeedError("keywords: an empty keyword matches everything")
    chosen = (kind or "other").strip().lower()
    if chosen not in EVENT_KINDS:
        raise EventFeedError(f"kind: {chosen!r} is not one of {', '.join(EVENT_KINDS)}")
    return ImportOptions(country, chosen, pairs)


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
    series: str | None = None
    extra_words: tuple[str, ...] = field(default=())


def _fail(where: str, field: str, problem: str) -> EventFeedError:
    return EventFeedError(f"{where}: {field}: {problem}", where=where, field=field)


def _finish(d: _Draft, options: ImportOptions) -> Event:
    title = " ".join((d.title or "").split())[:MAX_TITLE]
    if not title:
        raise _fail(d.where, "title", "missing")
    if d.start is None:
        raise _fail(d.where, "start", "missing")
    raw_cc = d.cc if d.cc and d.cc.strip() else options.cc
    cc = (raw_cc or "").strip().upper()
    if not _COUNTRY.fullmatch(cc):
        raise _fail(d.where, "country", f"need a two-letter country code, got {raw_cc!r}")
    kind = (d.kind or _kind_from_keywords(d, title, options)).strip().lower()
    if kind not in EVENT_KINDS:
        raise _fail(d.where, "kind", f"{kind!r} is not one of {', '.join(EVENT_KINDS)}")
    end = d.end or (d.start + d.duration if d.duration is not None else None)
    if end is not None and end < d.start:
        raise _fail(d.where, "end", "must be later than start")
    if end == d.start:
        end = None  # a zero-length entry announces no end
    ident = stable_id(d.id) if d.id else _derived_id(title, cc, d.start)
    url = d.source_url.strip() if d.source_url else None
    tags = tuple(t[:MAX_TAG] for t in d.tags[:MAX_TAGS])
    source = url if url and len(url) <= MAX_URL else None
    return Event(ident, kind, title, cc, d.start, end, source, tags, d.series)


def _kind_from_keywords(d: _Draft, title: str, options: ImportOptions) -> str:
    labels = {t.casefold() for t in (*d.tags, *d.extra_words)}
    for word, kind in options.keywords:
        if word in labels:
            return kind
    folded = title.casefold()
    for word, kind in options.keywords:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", folded):
            return kind
    return options.kind


def stable_id(raw: str) -> str:
    """The entry's own id when it is short and plain, else a digest of it."""
    raw = raw.strip()
    if _ID.fullmatch(raw):
        return raw
    return "ev-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def occurrence_id(series: str, start: datetime) -> str:
    """Series UID + the occurrence's original start: the same occurrence, the same id."""
    return stable_id(f"{series}_{start.astimezone(UTC):%Y%m%dT%H%M%SZ}")


def _derived_id(title: str, cc: str, start: datetime) -> str:
    digest = hashlib.sha256(f"{title}|{cc}|{start.isoformat()}".encode()).hexdigest()
    return f"ev-{digest[:16]}"


def _iso_time(text: str, where: str, field: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(where, field, f"not an ISO 8601 time: {text[:64]!r}") from exc
    return _utc(t)


def _utc(t: datetime) -> datetime:
    """Aware and in UTC; a floating time is taken as UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _split_kinds(categories: Iterable[str]) -> tuple[str | None, str | None, tuple[str, ...]]:
    """``country:KZ`` and ``kind:protest`` categories apart from ordinary tags."""
    cc = kind = None
    tags = []
    for category in (c.strip() for c in categories if c and c.strip()):
        prefix, sep, rest = category.partition(":")
        if sep and prefix.lower() == "country":
            cc = rest
        elif sep and prefix.lower() == "kind":
            kind = rest
        else:
            tags.append(category)
    return cc, kind, tuple(tags)


# --- iCalendar ----------------------------------------------------------------------------


def parse_ical(
    text: str, options: ImportOptions | None = None, horizon: Horizon | None = None
) -> Parsed:
    """Single VEVENTs as they are; recurring ones as their occurrences inside `horizon`."""
    options = options or ImportOptions()
    if horizon is None:
        horizon = Horizon.around(datetime.now(UTC), timedelta(days=365), timedelta(days=42))
    try:
        return _parse_ical(text, options, horizon)
    except EventFeedError as exc:
        line = _locate(text, exc.where, exc.field)
        if line is None:
            raise
        raise EventFeedError(f"line {line}: {exc}", where=exc.where, field=exc.field) from exc


def _locate(text: str, where: str, field: str) -> int | None:
    """The physical line of `field` inside the entry `where` names (by UID), if found."""
    uid = re.search(r"UID '([^']*)'", where)
    if not field or uid is None:
        return None
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        upper = line.upper()
        if upper.startswith("BEGIN:VEVENT"):
            block = []
        block.append((number, line))
        if upper.startswith("END:VEVENT") and any(
            ln.strip() == f"UID:{uid.group(1)}" for _, ln in block
        ):
            for n, ln in block:
                if re.match(rf"{re.escape(field)}[;:]", ln, re.IGNORECASE):
                    return n
    return None


def _parse_ical(text: str, options: ImportOptions, horizon: Horizon) -> Parsed:
    cal = _calendar(text)
    recurring = {
        str(c.get("UID", ""))
        for c in cal.walk("VEVENT")
        if any(k in c for k in ("RRULE", "RDATE", "RECURRENCE-ID"))
    }
    events: list[Event] = []
    cancelled: set[str] = set()
    for index, component in enumerate(cal.walk("VEVENT"), start=1):
        if str(component.get("UID", "")) in recurring:
            continue
        draft = _ical_draft(component, f"VEVENT {index}{_uid_note(component)}")
        if _is_cancelled(component):
            if draft.id:
                cancelled.add(stable_id(draft.id))
            continue
        events.append(_finish(draft, options))
    series = {stable_id(uid) for uid in recurring if uid}
    events.extend(_occurrences(cal, recurring, options, horizon))
    return Parsed(events, horizon, frozenset(series), frozenset(cancelled))


def _calendar(text: str) -> icalendar.Calendar:
    if not text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        raise EventFeedError("not an iCalendar file (no BEGIN:VCALENDAR)", where="line 1")
    try:
        cal: icalendar.Calendar = x_wr_timezone.to_standard(icalendar.Calendar.from_ical(text))
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        raise EventFeedError(f"not a readable iCalendar file: {_short(exc)}") from exc
    for component in cal.walk():
        for prop, problem in component.errors:
            name = getattr(component, "name", "component")
            raise _fail(f"{name}{_uid_note(component)}", prop or "content line", _short(problem))
    return cal


def _short(problem: object) -> str:
    return str(problem).splitlines()[0][:200] if str(problem) else type(problem).__name__


def _uid_note(component: Any) -> str:
    uid = str(component.get("UID", ""))
    return f" (UID {uid[:80]!r})" if uid else ""


def _is_cancelled(component: Any) -> bool:
    return str(component.get("STATUS", "")).upper() == "CANCELLED"


def _ical_draft(component: Any, where: str) -> _Draft:
    categories: list[str] = []
    for prop in _as_list(component.get("CATEGORIES")):
        categories.extend(str(c) for c in getattr(prop, "cats", [prop]))
    cc, kind, tags = _split_kinds(categories)
    d = _Draft(where=where, tags=tags)
    d.id = str(component["UID"]) if "UID" in component else None
    d.title = str(component.get("SUMMARY", ""))
    d.start = _ical_time(component, "DTSTART", where)
    d.end = _ical_time(component, "DTEND", where) if "DTEND" in component else None
    d.duration = _ical_duration(component, where) if "DURATION" in component else None
    d.source_url = str(component["URL"]) if "URL" in component else None
    d.cc = str(component.get("X-CENSORWATCH-COUNTRY", "")) or cc
    d.kind = str(component.get("X-CENSORWATCH-KIND", "")) or kind
    return d


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _ical_time(component: Any, name: str, where: str) -> datetime | None:
    prop = component.get(name)
    if prop is None:
        return None
    try:
        moment = prop.dt
    except (ValueError, AttributeError) as exc:
        raise _fail(where, name, f"not an iCalendar date-time: {_short(exc)}") from exc
    if isinstance(moment, datetime):
        tzid = prop.params.get("TZID")
        if moment.tzinfo is None and tzid:
            raise _fail(where, name, f"unknown TZID {str(tzid)[:64]!r}")
        return _utc(moment)
    if isinstance(moment, date):
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    raise _fail(where, name, f"not a date or date-time: {moment!r}")


def _ical_duration(component: Any, where: str) -> timedelta:
    try:
        span = component["DURATION"].dt
    except (ValueError, AttributeError) as exc:
        raise _fail(where, "DURATION", f"not an iCalendar duration: {_short(exc)}") from exc
    if not isinstance(span, timedelta) or span <= timedelta(0):
        raise _fail(where, "DURATION", f"not a positive duration: {span!r}")
    return span


def _occurrences(
    cal: icalendar.Calendar, uids: set[str], options: ImportOptions, horizon: Horizon
) -> Iterator[Event]:
    """Occurrences of the recurring entries that start inside the horizon, cancelled ones
    left out; more than ``options.max_events`` of them is an error, not a truncation."""
    if not uids:
        return
    subset = icalendar.Calendar()
    for component in cal.subcomponents:
        if component.name != "VEVENT" or str(component.get("UID", "")) in uids:
            subset.add_component(component)
    _refuse_huge_expansion(subset, options.max_events, horizon)
    try:
        found = recurring_ical_events.of(subset).between(horizon.since, horizon.until)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise EventFeedError(f"recurrence cannot be expanded: {_short(exc)}") from exc
    for occurrence in sorted(
        found, key=lambda c: _ical_time(c, "DTSTART", "VEVENT") or horizon.since
    ):
        event = _occurrence(occurrence, options)
        if horizon.since <= event.start < horizon.until and not _is_cancelled(occurrence):
            yield event


def _refuse_huge_expansion(cal: icalendar.Calendar, limit: int, horizon: Horizon) -> None:
    """Count occurrences in the horizon with dateutil (cheap) before expanding them
    (not cheap): an ``RRULE:FREQ=SECONDLY`` would otherwise take minutes to refuse."""
    total = 0
    for component in cal.walk("VEVENT"):
        total += sum(len(getattr(r, "dts", [r])) for r in _as_list(component.get("RDATE")))
        for rule in _as_list(component.get("RRULE")):
            total += _count_rule(component, rule, horizon, limit + 1 - total)
        if total > limit:
            raise EventFeedError(
                f"more than {limit} occurrences before {horizon.until:%Y-%m-%d}; refused",
                field="RRULE",
            )


def _count_rule(component: Any, rule: Any, horizon: Horizon, limit: int) -> int:
    try:
        start = component["DTSTART"].dt
        if not isinstance(start, datetime):
            start = datetime(start.year, start.month, start.day)
        since, until = horizon.since, horizon.until
        if start.tzinfo is None:
            since, until = since.replace(tzinfo=None), until.replace(tzinfo=None)
        recurrence = rrulestr(rule.to_ical().decode(), dtstart=start)
        upcoming = itertools.islice(recurrence.xafter(since, inc=True), max(limit, 0))
        return sum(1 for t in upcoming if t < until)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        return 0  # left to recurring_ical_events, which names the problem


def _occurrence(component: Any, options: ImportOptions) -> Event:
    """One occurrence as an Event, its id from the series UID and its original start."""
    uid = str(component.get("UID", ""))
    draft = _ical_draft(component, f"VEVENT{_uid_note(component)}")
    assert draft.start is not None  # recurring_ical_events needs DTSTART to expand
    original = _ical_time(component, "RECURRENCE-ID", draft.where) or draft.start
    draft.series = stable_id(uid)
    draft.id = occurrence_id(uid, original)
    return _finish(draft, options)


# --- RSS / Atom ---------------------------------------------------------------------------


def parse_feed(text: str, options: ImportOptions | None = None) -> list[Event]:
    """Items of an RSS or Atom feed; the start from ``<cw:start>``/``<ev:startdate>`` when
    given, else the item's publication time (how CMS event plugins publish)."""
    options = options or ImportOptions()
    data = text.encode("utf-8")
    _check_xml(data)
    feed = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
    if not feed.get("version"):
        raise EventFeedError("neither RSS nor Atom (no feed or channel element)", field="root")
    prefixes = {uri: prefix for prefix, uri in feed.get("namespaces", {}).items()}
    ours, rss_event = prefixes.get(NS), prefixes.get(RSS_EVENT_NS)
    label = "entry" if str(feed.get("version", "")).startswith("atom") else "item"
    return [
        _finish(_item(entry, f"{label} {i}", ours, rss_event), options)
        for i, entry in enumerate(feed.entries, start=1)
    ]


def _check_xml(data: bytes) -> None:
    """Well-formed, no DTD or entities, nested at most `MAX_XML_DEPTH` deep."""
    depth = 0
    try:
        for kind, _element in iterparse(io.BytesIO(data), events=("start", "end"), forbid_dtd=True):
            depth += 1 if kind == "start" else -1
            if depth > MAX_XML_DEPTH:
                raise EventFeedError(
                    f"elements nested deeper than {MAX_XML_DEPTH}; refused", field="depth"
                )
    except DefusedXmlException as exc:
        raise EventFeedError("feed declares a DTD or entities; refused", field="DOCTYPE") from exc
    except ParseError as exc:
        line, col = exc.position
        raise EventFeedError(
            f"line {line}, column {col}: not well-formed XML ({exc})", where=f"line {line}"
        ) from exc


def _item(entry: Any, where: str, ours: str | None, rss_event: str | None) -> _Draft:
    cc, kind, tags = _split_kinds(t.get("term") or "" for t in entry.get("tags", []))
    d = _Draft(where=where, title=entry.get("title"), source_url=entry.get("link"), tags=tags)
    d.id = entry.get("id") or entry.get("guid") or d.source_url
    d.cc = _extension(entry, ours, "country") or cc
    d.kind = _extension(entry, ours, "kind") or kind
    start = _extension(entry, ours, "start") or _extension(entry, rss_event, "startdate")
    end = _extension(entry, ours, "end") or _extension(entry, rss_event, "enddate")
    d.start = _iso_time(start, where, "start") if start else _published(entry, where)
    d.end = _iso_time(end, where, "end") if end else None
    return d


def _extension(entry: Any, prefix: str | None, name: str) -> str | None:
    if prefix is None:
        return None
    value = entry.get(f"{prefix}_{name}")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _published(entry: Any, where: str) -> datetime | None:
    for key in ("published", "updated"):
        parsed: time.struct_time | None = entry.get(f"{key}_parsed")
        if parsed is not None:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
        if entry.get(key):
            name = "pubDate" if key == "published" else key
            raise _fail(where, name, f"not a date: {str(entry[key])[:64]!r}")
    return None


# --- JSON ---------------------------------------------------------------------------------

JSON_FIELDS: Final = frozenset(
    {"id", "kind", "title", "cc", "country", "start", "end", "duration", "source_url", "url"}
    | {"tags", "series", "duration_seconds"}
)


def parse_json(text: str, options: ImportOptions | None = None) -> list[Event]:
    """A JSON list of events, or {"events": [...]}; times ISO 8601, duration in seconds."""
    options = options or ImportOptions()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventFeedError(
            f"line {exc.lineno}, column {exc.colno}: not JSON ({exc.msg})",
            where=f"line {exc.lineno}",
        ) from exc
    except RecursionError as exc:
        raise EventFeedError("JSON nested too deeply; refused", field="depth") from exc
    items = doc.get("events") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise EventFeedError('expected a list of events or {"events": [...]}', field="events")
    return [event_from_mapping(item, f"event {i}", options) for i, item in enumerate(items, 1)]


def event_from_mapping(
    item: Any, where: str = "event", options: ImportOptions | None = None
) -> Event:
    """One event from a JSON object (the import format, the API body, the CLI's flags): the
    single place an event entered by hand is checked."""
    return _finish(_json_draft(item, where), options or ImportOptions())


def _json_draft(item: Any, where: str) -> _Draft:
    if not isinstance(item, dict):
        raise _fail(where, "event", "not an object")
    unknown = sorted(set(item) - JSON_FIELDS)
    if unknown:
        raise _fail(where, unknown[0][:64], "unknown field")
    d = _Draft(where=where)
    d.id = _json_str(item, "id", where)
    d.kind = _json_str(item, "kind", where)
    d.title = _json_str(item, "title", where)
    d.cc = _json_str(item, "cc", where) or _json_str(item, "country", where)
    d.source_url = _json_str(item, "source_url", where) or _json_str(item, "url", where)
    series = _json_str(item, "series", where)
    d.series = stable_id(series) if series else None
    start, end = _json_str(item, "start", where), _json_str(item, "end", where)
    d.start = _iso_time(start, where, "start") if start else None
    d.end = _iso_time(end, where, "end") if end else None
    d.duration = _json_duration(item.get("duration", item.get("duration_seconds")), where)
    d.tags = _json_tags(item.get("tags"), where)
    return d


def _json_str(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(where, key, f"expected a string, got {type(value).__name__}")
    return value


def _json_duration(value: Any, where: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3e6:
        raise _fail(where, "duration", f"expected seconds (0 to 3000000), got {value!r}")
    return timedelta(seconds=value)


def _json_tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _fail(where, "tags", "expected a list of strings")
    if len(value) > MAX_TAGS or any(len(t) > MAX_TAG for t in value):
        raise _fail(where, "tags", f"at most {MAX_TAGS} tags of at most {MAX_TAG} characters")
    return tuple(value)


def series_of(events: Sequence[Event]) -> dict[str, list[Event]]:
    """Events grouped by series, each group in start order; single events left out."""
    groups: dict[str, list[Event]] = {}
    for event in sorted(events, key=lambda e: (e.start, e.id)):
        if event.series is not None:
            groups.setdefault(event.series, []).append(event)
    return groups
