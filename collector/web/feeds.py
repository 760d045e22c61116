"""Incident feeds: Atom 1.0 (RFC 4287), RSS 2.0 and JSON Feed 1.1, built from plain items.

An item's id is a ``urn:uuid:`` named after its incident, not its permalink: a reader that
saw an incident once recognises it when it is updated or resolved (``updated`` moves, the
id does not), and still does after the collector moves to another address or gains a
``public_url``. Links are absolute when the collector knows its public address and relative
to the feed otherwise (``View.feed_link``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from xml.etree import ElementTree as ET

ATOM: Final = "http://www.w3.org/2005/Atom"
JSON_FEED: Final = "https://jsonfeed.org/version/1.1"


_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://censorwatch.invalid/feeds")


def entry_id(incident_id: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, 'incident/' + incident_id)}"


def feed_id(path: str) -> str:
    """One feed's id, from its path (without the format: Atom and RSS of one feed agree)."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, 'feed' + path.rsplit('.', 1)[0])}"


@dataclass(frozen=True)
class Item:
    id: str
    url: str  # the permalink
    title: str
    summary: str
    published: dt.datetime
    updated: dt.datetime
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Feed:
    id: str
    title: str
    home: str  # the page the feed belongs to
    url: str  # the feed's own address
    language: str
    items: Sequence[Item]

    @property
    def updated(self) -> dt.datetime:
        return max((i.updated for i in self.items), default=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="unicode").encode()
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def atom(feed: Feed) -> bytes:
    root = ET.Element("feed", {"xmlns": ATOM, "xml:lang": feed.language})
    _sub(root, "title", feed.title)
    _sub(root, "id", feed.id)
    _sub(root, "updated", _iso(feed.updated))
    _sub(root, "link", rel="self", href=feed.url)
    _sub(root, "link", rel="alternate", href=feed.home, type="text/html")
    author = _sub(root, "author")
    _sub(author, "name", "censorwatch")
    for item in feed.items:
        entry = _sub(root, "entry")
        _sub(entry, "title", item.title)
        _sub(entry, "id", item.id)
        _sub(entry, "link", rel="alternate", href=item.url, type="text/html")
        _sub(entry, "published", _iso(item.published))
        _sub(entry, "updated", _iso(item.updated))
        _sub(entry, "summary", item.summary, type="text")
        for tag in item.tags:
            _sub(entry, "category", term=tag)
    return _xml(root)


def rss(feed: Feed) -> bytes:
    root = ET.Element("rss", {"version": "2.0", "xmlns:atom": ATOM})
    channel = _sub(root, "channel")
    _sub(channel, "title", feed.title)
    _sub(channel, "link", feed.home)
    _sub(channel, "description", feed.title)
    _sub(channel, "language", feed.language)
    _sub(channel, "lastBuildDate", email.utils.format_datetime(feed.updated.astimezone(dt.UTC)))
    _sub(channel, "atom:link", href=feed.url, rel="self", type="application/rss+xml")
    for item in feed.items:
        entry = _sub(channel, "item")
        _sub(entry, "title", item.title)
        _sub(entry, "link", item.url)
        _sub(entry, "guid", item.id, isPermaLink="false")
        _sub(entry, "pubDate", email.utils.format_datetime(item.published.astimezone(dt.UTC)))
        _sub(entry, "description", item.summary)
        for tag in item.tags:
            _sub(entry, "category", tag)
    return _xml(root)


def json_feed(feed: Feed) -> bytes:
    body = {
        "version": JSON_FEED,
        "title": feed.title,
        "home_page_url": feed.home,
        "feed_url": feed.url,
        "language": feed.language,
        "items": [
            {
                "id": item.id,
                "url": item.url,
                "title": item.title,
                "content_text": item.summary,
                "date_published": _iso(item.published),
                "date_modified": _iso(item.updated),
                "tags": list(item.tags),
            }
            for item in feed.items
        ],
    }
    return json.dumps(body, ensure_ascii=False, indent=1).encode()
