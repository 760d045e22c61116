"""RSS and Atom in every dialect through ``feedparser``, after ``defusedxml`` has refused
DTDs, entities and absurd nesting."""

from __future__ import annotations

import calendar
import io
import time
from datetime import UTC, datetime
from typing import Any, Final
from xml.etree.ElementTree import ParseError

import feedparser
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from alerts.events.entries import (
    NS,
    Draft,
    EventFeedError,
    ImportOptions,
    fail,
    finish,
    iso_time,
    split_kinds,
)
from alerts.model import Event

RSS_EVENT_NS: Final = "http://purl.org/rss/1.0/modules/event/"  # <ev:startdate>, <ev:enddate>
MAX_XML_DEPTH: Final = 32


def parse_feed(text: str, options: ImportOptions | None = None) -> list[Event]:
    """Items of an RSS or Atom feed; the start from ``<cw:start>``/``<ev:startdate>`` when
    given, else the item's publication time (how CMS event plugins publish)."""
    options = options or ImportOptions()
    data = text.encode("utf-8")
    _check_xml(data)
    try:
        feed = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # hostile input makes the library fail in any way it can
        raise EventFeedError(f"not a readable feed: {type(exc).__name__}: {exc}"[:240]) from exc
    if not feed.get("version"):
        raise EventFeedError("neither RSS nor Atom (no feed or channel element)", field="root")
    prefixes = {uri: prefix for prefix, uri in feed.get("namespaces", {}).items()}
    ours, rss_event = prefixes.get(NS), prefixes.get(RSS_EVENT_NS)
    label = "entry" if str(feed.get("version", "")).startswith("atom") else "item"
    return [
        finish(_item(entry, f"{label} {i}", ours, rss_event), options)
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


def _item(entry: Any, where: str, ours: str | None, rss_event: str | None) -> Draft:
    cc, kind, tags = split_kinds(t.get("term") or "" for t in entry.get("tags", []))
    d = Draft(where=where, title=entry.get("title"), source_url=entry.get("link"), tags=tags)
    d.id = entry.get("id") or entry.get("guid") or d.source_url
    d.cc = _extension(entry, ours, "country") or cc
    d.kind = _extension(entry, ours, "kind") or kind
    start = _extension(entry, ours, "start") or _extension(entry, rss_event, "startdate")
    end = _extension(entry, ours, "end") or _extension(entry, rss_event, "enddate")
    d.start = iso_time(start, where, "start") if start else _published(entry, where)
    d.end = iso_time(end, where, "end") if end else None
    return d


def _extension(entry: Any, prefix: str | None, name: str) -> str | None:
    if prefix is None:
        return None
    value = entry.get(f"{prefix}_{name}")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _published(entry: Any, where: str) -> datetime | None:
    for key in ("published", "updated"):
        parsed: time.struct_time | None = entry.get(f"{key}_parsed")
        name = "pubDate" if key == "published" else key
        if parsed is not None:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (ValueError, OverflowError, OSError) as exc:
                raise fail(where, name, f"not a usable date: {str(entry[key])[:64]!r}") from exc
        if entry.get(key):
            raise fail(where, name, f"not a date: {str(entry[key])[:64]!r}")
    return None
