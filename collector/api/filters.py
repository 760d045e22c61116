"""Query-string filters shared by the measurement and aggregation endpoints, parsed strictly.

Unknown parameters are an error rather than ignored: a researcher who typed ``countr=KZ``
should learn it, not receive the whole world's data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from collector.api.errors import bad_request, unprocessable
from probe.model import METHODS, VERDICTS

_SERVICE: Final = re.compile(r"^[a-z0-9_-]{1,64}$")
_COUNTRY: Final = re.compile(r"^[A-Za-z]{2}$")
_ASN: Final = re.compile(r"^(?:AS)?(\d{1,10})$", re.IGNORECASE)
FILTER_KEYS: Final = frozenset({"service", "cc", "asn", "verdict", "method", "since", "until"})


@dataclass(frozen=True)
class Filters:
    service: str | None = None
    cc: str | None = None
    asn: int | None = None
    verdict: str | None = None
    method: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def check_keys(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    """Known parameters, each at most once (a repeated one would be half ignored)."""
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise bad_request(f"unknown query parameter {unknown[0]!r}", allowed=sorted(allowed))
    names = list(params)  # a multidict lists a repeated name each time
    if len(names) != len(set(names)):
        twice = next(name for name in names if names.count(name) > 1)
        raise bad_request(f"{twice}: given more than once")


def iso_time(text: str) -> dt.datetime:
    """ISO 8601 date or date-time in UTC; without an offset it is taken as UTC. A ValueError
    says why not: also a time whose offset moves it out of years 1-9999 in UTC, which could
    not be compared with anything stored."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"expected an ISO 8601 time, got {text[:64]!r}") from exc
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError(f"{text[:64]!r} is outside years 1-9999 in UTC") from exc


def parse_time(name: str, text: str) -> dt.datetime:
    """:func:`iso_time` of a query parameter; a 400 naming it when unusable."""
    try:
        return iso_time(text)
    except ValueError as exc:
        raise bad_request(f"{name}: {exc}") from exc


def optional_time(params: Mapping[str, str], name: str) -> dt.datetime | None:
    """The time in ``params[name]``; absent or empty means no bound."""
    text = params.get(name)
    return parse_time(name, text) if text else None


_WHOLE_NUMBER: Final = re.compile(r"^[0-9]{1,12}$")


def parse_limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    """``limit`` from 1 to ``maximum``, ASCII digits only (``int()`` would take ``²``'s kin)."""
    text = params.get("limit")
    if not text:
        return min(default, maximum)
    if not _WHOLE_NUMBER.match(text) or not 1 <= int(text) <= maximum:
        raise bad_request(f"limit: expected a whole number from 1 to {maximum}, got {text[:16]!r}")
    return int(text)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise bad_request(f"{name}: {value[:64]!r} is not one of {', '.join(allowed)}")
    return value


def _matching(name: str, value: str, pattern: re.Pattern[str], expected: str) -> re.Match[str]:
    match = pattern.match(value)
    if match is None:
        raise bad_request(f"{name}: expected {expected}, got {value[:64]!r}")
    return match


def parse_filters(params: Mapping[str, str]) -> Filters:
    get = params.get
    service = get("service")
    cc = get("cc")
    asn = get("asn")
    verdict = get("verdict")
    method = get("method")
    since = optional_time(params, "since")
    until = optional_time(params, "until")
    if since and until and since >= until:
        raise unprocessable("since must be earlier than until")
    asn_number = None
    if asn:
        asn_number = int(_matching("asn", asn, _ASN, "an AS number like 9198 or AS9198")[1])
        if asn_number > 4294967295:
            raise bad_request(f"asn: {asn_number} is out of range")
    return Filters(
        service=_matching("service", service, _SERVICE, "a service name")[0] if service else None,
        cc=_matching("cc", cc, _COUNTRY, "a two-letter country code")[0].upper() if cc else None,
        asn=asn_number,
        verdict=_one_of("verdict", verdict, VERDICTS) if verdict else None,
        method=_one_of("method", method, METHODS) if method else None,
        since=since,
        until=until,
    )
