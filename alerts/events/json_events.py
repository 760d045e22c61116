"""The JSON import format, which is also the shape of an event entered by hand (API, CLI)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Final

from alerts.events.entries import (
    MAX_TAG,
    MAX_TAGS,
    Draft,
    EventFeedError,
    ImportOptions,
    fail,
    finish,
    iso_time,
    stable_id,
)
from alerts.model import Event

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
    return finish(_json_draft(item, where), options or ImportOptions())


def _json_draft(item: Any, where: str) -> Draft:
    if not isinstance(item, dict):
        raise fail(where, "event", "not an object")
    unknown = sorted(set(item) - JSON_FIELDS)
    if unknown:
        raise fail(where, unknown[0][:64], "unknown field")
    d = Draft(where=where)
    d.id = _json_str(item, "id", where)
    d.kind = _json_str(item, "kind", where)
    d.title = _json_str(item, "title", where)
    d.cc = _json_str(item, "cc", where) or _json_str(item, "country", where)
    d.source_url = _json_str(item, "source_url", where) or _json_str(item, "url", where)
    series = _json_str(item, "series", where)
    d.series = stable_id(series) if series else None
    start, end = _json_str(item, "start", where), _json_str(item, "end", where)
    d.start = iso_time(start, where, "start") if start else None
    d.end = iso_time(end, where, "end") if end else None
    d.duration = _json_duration(item.get("duration", item.get("duration_seconds")), where)
    d.tags = _json_tags(item.get("tags"), where)
    return d


def _json_str(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise fail(where, key, f"expected a string, got {type(value).__name__}")
    return value


def _json_duration(value: Any, where: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3e6:
        raise fail(where, "duration", f"expected seconds (0 to 3000000), got {value!r}")
    return timedelta(seconds=value)


def _json_tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise fail(where, "tags", "expected a list of strings")
    if len(value) > MAX_TAGS or any(len(t) > MAX_TAG for t in value):
        raise fail(where, "tags", f"at most {MAX_TAGS} tags of at most {MAX_TAG} characters")
    return tuple(value)
