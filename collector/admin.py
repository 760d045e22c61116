"""``censorwatch events …``, ``sources …`` and ``subscribers …``: admin work on the database.

These commands talk to the database directly (no running collector, no admin token), with
the same settings as ``censorwatch db upgrade``. Every input is checked before anything is
written, and a bad one is an `AdminInputError` (one line, exit status 2); a feed is parsed
in full first, so a malformed one writes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.events import (
    FORMATS,
    EventFeedError,
    Parsed,
    event_from_mapping,
    options_for,
    parse,
    sniff,
)
from alerts.model import EVENT_KINDS, Event
from collector.alerting.sources import (
    Poller,
    PollSettings,
    SourceInputError,
    new_source,
    refuse_private_name,
)
from collector.api.filters import iso_time
from collector.config import Config
from collector.store import events as eventstore
from collector.store import migrate
from collector.store import sources as sourcestore
from collector.store import subscribers as subscriberstore
from collector.store.db import Database
from collector.store.sources import NewSource, Source
from collector.store.subscribers import FORMATS as SUBSCRIBER_FORMATS
from collector.store.subscribers import NewSubscriber, Subscriber

T = TypeVar("T")
Common = Callable[[argparse.ArgumentParser], None]  # the options every command takes
_COUNTRY: Final = re.compile(r"[A-Z]{2}")
_SERVICE: Final = re.compile(r"[a-z0-9_-]{1,64}")
_URL: Final = re.compile(r"https?://\S+")
_DURATION_MINUTES: Final = range(1, 30 * 24 * 60 + 1)  # up to 30 days
MAX_FEED_BYTES: Final = 4 * 1024 * 1024


class AdminInputError(ValueError):
    """Input an admin command cannot use; the message says which and why."""


class NotFoundError(LookupError):
    """The subscriber (or event) named on the command line does not exist."""


# --- parsers ------------------------------------------------------------------------------


def add_commands(commands: Any, common: Common) -> None:
    """Register ``events``, ``sources`` and ``subscribers`` on the top-level subparsers."""
    for name, text, add_subcommands in (
        ("events", "announced events", _event_commands),
        ("sources", "event sources the collector polls", _source_commands),
        ("subscribers", "webhook subscribers", _subscriber_commands),
    ):
        parser = commands.add_parser(name, help=text)
        dest = f"{name}_command"
        add_subcommands(parser.add_subparsers(dest=dest, required=True, metavar="COMMAND"), common)


def _command(sub: Any, name: str, text: str, common: Common) -> argparse.ArgumentParser:
    command: argparse.ArgumentParser = sub.add_parser(name, help=text)
    common(command)
    return command


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document")


def _feed_options(parser: argparse.ArgumentParser, when_no_format: str) -> None:
    """What a feed's entries are when they do not say: its format, country and kind."""
    parser.add_argument("--format", choices=FORMATS, help=when_no_format)
    parser.add_argument("--country", metavar="CC", help="for entries that name none")
    parser.add_argument("--kind", choices=EVENT_KINDS, help="for entries that name none")


def _list_and_id_commands(
    sub: Any,
    listing: str,
    by_id: Sequence[tuple[str, str]],
    common: Common,
) -> None:
    """``list [--json]``, then one command per (name, help) that takes an ID."""
    _json_option(_command(sub, "list", listing, common))
    for name, text in by_id:
        _command(sub, name, text, common).add_argument("id", metavar="ID")


def _event_commands(sub: Any, common: Common) -> None:
    add = _command(sub, "add", "announce one event", common)
    add.add_argument("--kind", required=True, choices=EVENT_KINDS)
    add.add_argument("--title", required=True)
    add.add_argument("--country", required=True, metavar="CC")
    add.add_argument("--start", required=True, metavar="ISO", help="ISO 8601; UTC if no zone")
    span = add.add_mutually_exclusive_group()
    span.add_argument("--end", metavar="ISO")
    span.add_argument("--duration", metavar="MINUTES", help="expected length in minutes")
    add.add_argument("--source-url", metavar="URL")
    add.add_argument("--tag", action="append", default=[], metavar="T", dest="tags")
    listing = _command(sub, "list", "list events", common)
    listing.add_argument("--country", metavar="CC")
    listing.add_argument("--since", metavar="ISO")
    _json_option(listing)
    feed = _command(sub, "import", "import an iCalendar, RSS/Atom or JSON feed", common)
    feed.add_argument("file", type=Path, metavar="FILE")
    _feed_options(feed, "guessed when absent")


def _source_commands(sub: Any, common: Common) -> None:
    add = _command(sub, "add", "register a calendar or feed to poll", common)
    add.add_argument("--url", required=True)
    _feed_options(add, "sniffed on each fetch when absent")
    add.add_argument(
        "--keyword",
        action="append",
        default=[],
        metavar="WORD=KIND",
        dest="keywords",
        help="a category or title word that makes an entry this kind (repeatable)",
    )
    add.add_argument("--interval", default="3600", metavar="S", help="seconds between polls")
    by_id = (("remove", "remove a source (its events stay)"), ("poll", "poll now"))
    _list_and_id_commands(sub, "list sources with their last success and error", by_id, common)


def _subscriber_commands(sub: Any, common: Common) -> None:
    add = _command(sub, "add", "add a webhook subscriber; prints its secret once", common)
    add.add_argument("--url", required=True)
    add.add_argument("--format", required=True, choices=SUBSCRIBER_FORMATS)
    add.add_argument("--country", action="append", default=[], metavar="CC", dest="countries")
    add.add_argument("--service", action="append", default=[], metavar="S", dest="services")
    add.add_argument("--min-confidence", default="0", metavar="X", help="0 to 1")
    add.add_argument("--no-resolutions", action="store_true", help="do not send resolutions")
    add.add_argument(
        "--unconfirmed",
        action="store_true",
        help="also send incidents too few independent probes confirm (labelled UNCONFIRMED)",
    )
    add.add_argument("--chat-id", metavar="ID", help="Telegram chat (format telegram)")
    by_id = (("remove", "remove a subscriber"), ("rotate", "issue a new secret"))
    _list_and_id_commands(sub, "list subscribers (never their secrets)", by_id, common)


# --- input checks -------------------------------------------------------------------------


def parse_time(text: str, option: str) -> dt.datetime:
    try:
        return iso_time(text)
    except ValueError as exc:
        raise AdminInputError(f"{option}: {exc}") from exc


def parse_country(text: str, option: str = "--country") -> str:
    cc = text.strip().upper()
    if not _COUNTRY.fullmatch(cc):
        raise AdminInputError(f"{option}: need a two-letter country code, got {text!r}")
    return cc


def _url(text: str, option: str) -> str:
    if not _URL.fullmatch(text) or len(text) > 2048:
        raise AdminInputError(f"{option}: need an http:// or https:// URL, got {text!r}")
    return text


def _whole(text: str, option: str, need: str, allowed: range | None = None) -> int:
    """A whole number from an option; ``need`` says what was wanted if it is not one.

    ``isdecimal``, not ``isdigit``: "²" is a digit that ``int`` does not read."""
    if not text.strip().isdecimal() or (allowed is not None and int(text) not in allowed):
        raise AdminInputError(f"{option}: need {need}, got {text!r}")
    return int(text)


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise AdminInputError(f"--min-confidence: need a number from 0 to 1, got {text!r}")
    return value


def event_from(args: argparse.Namespace) -> Event:
    """The flags as the JSON import format, checked by the one event validator."""
    start = parse_time(args.start, "--start")
    item: dict[str, Any] = {"kind": args.kind, "title": args.title, "start": start.isoformat()}
    item["cc"] = parse_country(args.country)
    if args.end is not None:
        item["end"] = parse_time(args.end, "--end").isoformat()
    if args.duration is not None:
        need = "whole minutes from 1 to 43200"
        item["duration"] = 60.0 * _whole(args.duration, "--duration", need, _DURATION_MINUTES)
    if args.source_url is not None:
        item["source_url"] = _url(args.source_url, "--source-url")
    item["tags"] = [t.strip() for t in args.tags if t.strip()]
    item["id"] = str(uuid.uuid4())
    try:
        return event_from_mapping(item, "event")
    except EventFeedError as exc:
        problem = str(exc).split(": ", 2)[-1]  # without the "event: field: " prefix
        raise AdminInputError(f"--{exc.field or 'event'}: {problem}") from exc


def _keywords(pairs: Sequence[str]) -> list[tuple[str, str]]:
    found = []
    for pair in pairs:
        word, sep, kind = pair.partition("=")
        if not sep or not word.strip():
            raise AdminInputError(f"--keyword: need WORD=KIND, got {pair!r}")
        found.append((word, kind))
    return found


def source_from(args: argparse.Namespace, config: Config) -> NewSource:
    try:
        return new_source(
            args.url,
            fmt=args.format,
            cc=args.country,
            kind=args.kind,
            keywords=_keywords(args.keywords),
            interval_seconds=_whole(args.interval, "--interval", "whole seconds"),
            config=config,
        )
    except SourceInputError as exc:
        raise AdminInputError(f"sources add: {exc}") from exc


def subscriber_from(args: argparse.Namespace) -> NewSubscriber:
    if args.format == "telegram" and not args.chat_id:
        raise AdminInputError("--chat-id: a telegram subscriber needs the chat's id")
    for service in args.services:
        if not _SERVICE.fullmatch(service):
            raise AdminInputError(f"--service: need a service name like telegram, got {service!r}")
    return NewSubscriber(
        url=_url(args.url, "--url"),
        format=args.format,
        chat_id=args.chat_id,
        countries=tuple(sorted({parse_country(c) for c in args.countries})),
        services=tuple(sorted(set(args.services))),
        min_confidence=_confidence(args.min_confidence),
        send_resolutions=not args.no_resolutions,
        unconfirmed=args.unconfirmed,
    )


# --- feeds --------------------------------------------------------------------------------


def read_feed(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FEED_BYTES + 1)
    except OSError as exc:
        raise AdminInputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_FEED_BYTES:
        raise AdminInputError(f"{path}: larger than {MAX_FEED_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AdminInputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def parse_feed_file(args: argparse.Namespace, config: Config, now: dt.datetime) -> Parsed:
    """The whole file parsed (recurring entries expanded) before anything is written."""
    path: Path = args.file
    text = read_feed(path)
    try:
        options = options_for(args.country, args.kind)
        chosen = args.format or sniff(text, name=path.name)
        return parse(text, chosen, options, PollSettings.of(config).horizon(now))
    except EventFeedError as exc:
        raise AdminInputError(f"{path}: {exc}") from exc


# --- commands -----------------------------------------------------------------------------


async def run(args: argparse.Namespace, config: Config) -> None:
    """Check the input, then do the work in one transaction."""
    if args.command == "events":
        work = _events_work(args, config)
    elif args.command == "sources":
        work = _sources_work(args, config)
    else:
        work = _subscribers_work(args, config)
    print(await _with_database(config, work), end="")


def _events_work(args: argparse.Namespace, config: Config) -> Callable[[Database], Awaitable[str]]:
    command = args.events_command
    now = dt.datetime.now(dt.UTC)
    if command == "add":
        event = event_from(args)
        parsed = Parsed([event], PollSettings.of(config).horizon(now))
        return lambda db: _store_events(db, parsed, now, f"event {event.id} added\n")
    if command == "import":
        parsed = parse_feed_file(args, config, now)
        n = len(parsed.events)
        message = f"imported {n} event{'s' if n != 1 else ''}\n"
        return lambda db: _store_events(db, parsed, now, message)
    cc = parse_country(args.country) if args.country is not None else None
    since = parse_time(args.since, "--since") if args.since is not None else None

    async def listing(db: Database) -> str:
        async with db.reading() as connection:
            found = await eventstore.listing(connection, cc=cc, since=since)
        return _events_text(found, as_json=args.json)

    return listing


def _subscribers_work(
    args: argparse.Namespace, config: Config
) -> Callable[[Database], Awaitable[str]]:
    command = args.subscribers_command
    now = dt.datetime.now(dt.UTC)
    if command == "add":
        wanted = subscriber_from(args)
        return lambda db: db.transaction(lambda c: _add_subscriber(c, wanted, now))
    if command == "list":
        return lambda db: db.transaction(lambda c: _subscribers_text(c, as_json=args.json))
    if command == "remove":
        return lambda db: db.transaction(lambda c: _remove_subscriber(c, args.id))
    overlap = dt.timedelta(seconds=config.secret_overlap_seconds)
    return lambda db: db.transaction(lambda c: _rotate(c, args.id, now, overlap))


async def _with_database(config: Config, work: Callable[[Database], Awaitable[T]]) -> T:
    db = Database(config.db_url)
    try:
        await migrate.upgrade(db)
        return await work(db)
    finally:
        await db.close()


async def _store_events(db: Database, parsed: Parsed, now: dt.datetime, message: str) -> str:
    removed = await db.transaction(lambda c: eventstore.store_import(c, db, parsed, now))
    return message + (f"removed {removed} cancelled\n" if removed else "")


def _sources_work(args: argparse.Namespace, config: Config) -> Callable[[Database], Awaitable[str]]:
    command = args.sources_command
    now = dt.datetime.now(dt.UTC)
    if command == "add":
        wanted = source_from(args, config)

        async def add(db: Database) -> str:
            try:
                await refuse_private_name(wanted.url, config)
            except SourceInputError as exc:
                raise AdminInputError(f"sources add: {exc}") from exc
            made = await db.transaction(lambda c: sourcestore.add(c, wanted, now))
            return f"source {made.id} added; polled every {made.interval_seconds} s\n"

        return add
    if command == "list":
        return lambda db: db.transaction(lambda c: _sources_text(c, as_json=args.json))
    if command == "remove":
        return lambda db: db.transaction(lambda c: _remove_source(c, args.id))
    return lambda db: _poll_source(db, config, args.id)


def _listing_text(
    name: str,
    found: Sequence[T],
    view: Callable[[T], dict[str, Any]],
    line: Callable[[T], str],
    *,
    as_json: bool,
    none: str,
) -> str:
    """``{name: [views]}`` as JSON, or a line each, or ``none`` when there are none."""
    if as_json:
        return json.dumps({name: [view(f) for f in found]}, default=_iso, indent=2) + "\n"
    if not found:
        return none + "\n"
    return "\n".join(line(f) for f in found) + "\n"


def _found(result: T | None, noun: str, ident: str) -> T:
    """What a lookup by the command line's id gave; None or False means no such one."""
    if result is None or result is False:
        raise NotFoundError(f"no {noun} with id {ident!r}")
    return result


def _source_line(s: Source) -> str:
    ok = f"{s.last_success_at:%Y-%m-%d %H:%M}Z" if s.last_success_at else "never"
    error = f"  error: {s.last_error}" if s.last_error else ""
    return f"{s.id}  {s.url}  {s.event_count} events  last success {ok}{error}"


async def _sources_text(connection: AsyncConnection, *, as_json: bool) -> str:
    found = await sourcestore.listing(connection)
    return _listing_text(
        "sources", found, Source.view, _source_line, as_json=as_json, none="no event sources"
    )


async def _remove_source(connection: AsyncConnection, source_id: str) -> str:
    _found(await sourcestore.remove(connection, source_id), "event source", source_id)
    return f"source {source_id} removed (its events stay)\n"


async def _poll_source(db: Database, config: Config, source_id: str) -> str:
    async with db.reading() as connection:
        found = await sourcestore.one(connection, source_id)
    source = _found(found, "event source", source_id)
    outcome = await Poller(db, PollSettings.of(config)).poll(source)
    if outcome.outcome == "error":
        return f"source {source_id}: failed ({outcome.reason}): {outcome.message}\n"
    if outcome.outcome == "not_modified":
        return f"source {source_id}: not modified; {outcome.events} events\n"
    return f"source {source_id}: {outcome.events} events, {outcome.removed} removed\n"


def _event_line(e: Event) -> str:
    end = f"{e.end:%Y-%m-%d %H:%M}" if e.end is not None else "open end"
    return f"{e.id}  {e.cc}  {e.kind:<10}  {e.start:%Y-%m-%d %H:%M}Z – {end}  {e.title}"


def _events_text(events: Sequence[Event], *, as_json: bool) -> str:
    return _listing_text(
        "events", events, eventstore.view, _event_line, as_json=as_json, none="no events"
    )


def _iso(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


async def _add_subscriber(
    connection: AsyncConnection, wanted: NewSubscriber, now: dt.datetime
) -> str:
    made = await subscriberstore.add(connection, wanted, now)
    return (
        f"subscriber {made.id} added\n"
        f"secret: {made.secret}\n"
        "(the secret is shown only now; give it to the receiver to verify signatures)\n"
    )


def _subscriber_line(s: Subscriber) -> str:
    state = "enabled" if s.enabled else f"disabled ({s.disabled_reason or 'by an admin'})"
    filters = ",".join(s.countries) or "all countries"
    services = ",".join(s.services) or "all services"
    return f"{s.id}  {s.format:<8}  {s.url}  {filters}  {services}  {state}"


async def _subscribers_text(connection: AsyncConnection, *, as_json: bool) -> str:
    found = await subscriberstore.all_subscribers(connection)
    return _listing_text(
        "subscribers",
        found,
        Subscriber.view,
        _subscriber_line,
        as_json=as_json,
        none="no subscribers",
    )


async def _remove_subscriber(connection: AsyncConnection, subscriber_id: str) -> str:
    _found(await subscriberstore.remove(connection, subscriber_id), "subscriber", subscriber_id)
    return f"subscriber {subscriber_id} removed\n"


async def _rotate(
    connection: AsyncConnection, subscriber_id: str, now: dt.datetime, overlap: dt.timedelta
) -> str:
    rotated = await subscriberstore.rotate(connection, subscriber_id, now, overlap)
    secret = _found(rotated, "subscriber", subscriber_id)
    until = (now + overlap).isoformat(timespec="seconds")
    return f"new secret: {secret}\n(shown only now; the previous secret also signs until {until})\n"
