"""What every importer shares: the error, the options and horizon of an import, the
draft an entry becomes, and the one check (`finish`) that turns a draft into an `Event`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from alerts.model import EVENT_KINDS, Event

NS: Final = "https://censorwatch.org/ns/events"  # <cw:country>, <cw:kind>, <cw:start>, <cw:end>
MAX_EVENTS: Final = 5000  # per feed, occurrences included
MAX_TITLE: Final = 512
MAX_URL: Final = 2048
MAX_TAGS: Final = 32
MAX_TAG: Final = 64
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
COUNTRY: Final = re.compile(r"[A-Z]{2}")


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
    if country is not None and not COUNTRY.fullmatch(country):
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


@dataclass
class Draft:
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


def fail(where: str, field: str, problem: str) -> EventFeedError:
    return EventFeedError(f"{where}: {field}: {problem}", where=where, field=field)


def finish(d: Draft, options: ImportOptions) -> Event:
    title = " ".join((d.title or "").split())[:MAX_TITLE]
    if not title:
        raise fail(d.where, "title", "missing")
    if d.start is None:
        raise fail(d.where, "start", "missing")
    raw_cc = d.cc if d.cc and d.cc.strip() else options.cc
    cc = (raw_cc or "").strip().upper()
    if not COUNTRY.fullmatch(cc):
        raise fail(d.where, "country", f"need a two-letter country code, got {raw_cc!r}")
    kind = (d.kind or _kind_from_keywords(d, title, options)).strip().lower()
    if kind not in EVENT_KINDS:
        raise fail(d.where, "kind", f"{kind!r} is not one of {', '.join(EVENT_KINDS)}")
    end = d.end or (d.start + d.duration if d.duration is not None else None)
    if end is not None and end < d.start:
        raise fail(d.where, "end", "must be later than start")
    if end == d.start:
        end = None  # a zero-length entry announces no end
    ident = stable_id(d.id) if d.id else _derived_id(title, cc, d.start)
    url = d.source_url.strip() if d.source_url else None
    tags = tuple(t[:MAX_TAG] for t in d.tags[:MAX_TAGS])
    source = url if url and len(url) <= MAX_URL else None
    return Event(ident, kind, title, cc, d.start, end, source, tags, d.series)


def _kind_from_keywords(d: Draft, title: str, options: ImportOptions) -> str:
    labels = {t.casefold() for t in d.tags}
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
    if ID_PATTERN.fullmatch(raw):
        return raw
    return "ev-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def occurrence_id(series: str, start: datetime) -> str:
    """Series UID + the occurrence's original start: the same occurrence, the same id."""
    return stable_id(f"{series}_{start.astimezone(UTC):%Y%m%dT%H%M%SZ}")


def _derived_id(title: str, cc: str, start: datetime) -> str:
    digest = hashlib.sha256(f"{title}|{cc}|{start.isoformat()}".encode()).hexdigest()
    return f"ev-{digest[:16]}"


def iso_time(text: str, where: str, field: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise fail(where, field, f"not an ISO 8601 time: {text[:64]!r}") from exc
    try:
        return utc(t)
    except OverflowError as exc:
        raise fail(where, field, f"outside years 1-9999 in UTC: {text[:64]!r}") from exc


def utc(t: datetime) -> datetime:
    """Aware and in UTC; a floating time is taken as UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def split_kinds(categories: Iterable[str]) -> tuple[str | None, str | None, tuple[str, ...]]:
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


def short(problem: object) -> str:
    """The first line of a library's complaint, bounded."""
    return str(problem).splitlines()[0][:200] if str(problem) else type(problem).__name__
