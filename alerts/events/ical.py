"""iCalendar: ``icalendar`` reads it (folding, escaping, VTIMEZONE), ``x-wr-timezone``
repairs Google Calendar's ``X-WR-TIMEZONE``, ``recurring-ical-events`` expands RRULE, RDATE,
EXDATE and modified occurrences; dateutil counts occurrences first so an absurd rule is
refused before anything expands."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
import recurring_ical_events
import x_wr_timezone
from dateutil.rrule import rrulestr

from alerts.events.entries import (
    Draft,
    EventFeedError,
    Horizon,
    ImportOptions,
    Parsed,
    fail,
    finish,
    occurrence_id,
    short,
    split_kinds,
    stable_id,
    utc,
)
from alerts.model import Event


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
        events.append(finish(draft, options))
    series = {stable_id(uid) for uid in recurring if uid}
    events.extend(_occurrences(cal, recurring, options, horizon))
    return Parsed(events, horizon, frozenset(series), frozenset(cancelled))


def _calendar(text: str) -> icalendar.Calendar:
    if not text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        raise EventFeedError("not an iCalendar file (no BEGIN:VCALENDAR)", where="line 1")
    try:
        cal: icalendar.Calendar = x_wr_timezone.to_standard(icalendar.Calendar.from_ical(text))
        problems = [(c, prop, problem) for c in cal.walk() for prop, problem in c.errors]
    except Exception as exc:  # hostile input makes the library fail in any way it can
        raise EventFeedError(f"not a readable iCalendar file: {short(exc)}") from exc
    for component, prop, problem in problems[:1]:
        name = getattr(component, "name", "component")
        raise fail(f"{name}{_uid_note(component)}", prop or "content line", short(problem))
    return cal


def _uid_note(component: Any) -> str:
    uid = str(component.get("UID", ""))
    return f" (UID {uid[:80]!r})" if uid else ""


def _is_cancelled(component: Any) -> bool:
    return str(component.get("STATUS", "")).upper() == "CANCELLED"


def _ical_draft(component: Any, where: str) -> Draft:
    categories: list[str] = []
    for prop in _as_list(component.get("CATEGORIES")):
        categories.extend(str(c) for c in getattr(prop, "cats", [prop]))
    cc, kind, tags = split_kinds(categories)
    d = Draft(where=where, tags=tags)
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
        raise fail(where, name, f"not an iCalendar date-time: {short(exc)}") from exc
    if isinstance(moment, datetime):
        tzid = prop.params.get("TZID")
        if moment.tzinfo is None and tzid:
            raise fail(where, name, f"unknown TZID {str(tzid)[:64]!r}")
        return utc(moment)
    if isinstance(moment, date):
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    raise fail(where, name, f"not a date or date-time: {moment!r}")


def _ical_duration(component: Any, where: str) -> timedelta:
    try:
        span = component["DURATION"].dt
    except (ValueError, AttributeError) as exc:
        raise fail(where, "DURATION", f"not an iCalendar duration: {short(exc)}") from exc
    if not isinstance(span, timedelta) or span <= timedelta(0):
        raise fail(where, "DURATION", f"not a positive duration: {span!r}")
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
    for component in subset.walk("VEVENT"):  # one readable start and end each, first
        where = f"VEVENT{_uid_note(component)}"
        if _ical_time(component, "DTSTART", where) is None:
            raise fail(where, "DTSTART", "missing")
        _ical_time(component, "DTEND", where)
    _refuse_huge_expansion(subset, options.max_events, horizon)
    try:
        found = recurring_ical_events.of(subset).between(horizon.since, horizon.until)
    except Exception as exc:  # hostile input makes the library fail in any way it can
        raise EventFeedError(f"recurrence cannot be expanded: {short(exc)}") from exc
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
    return finish(draft, options)
