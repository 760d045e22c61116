"""What the public sees of a measurement: a daily pseudonym for the probe, times to the hour.

A probe id that stays the same across days, with exact start times, is a timeline an ISP's
flow logs could be matched against to find the volunteer's line. Without a researcher or
admin token the listing therefore names each probe by a keyed hash of its id and the UTC
day of the measurement (the same all day, unrelated the next day, and not computable by
anyone without the collector's key), rounds times down to the hour, and answers time
filters at that grain so bisecting ``since`` cannot recover the exact time. Ordering within
an hour still follows the exact times; that, and the set of a day's measurements under one
pseudonym, is the residual risk (see the consent text).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any, Final

import msgspec

PSEUDONYM_KEY: Final = "pseudonym"
_HOUR: Final = dt.timedelta(hours=1)


def pseudonym(key: bytes, probe_id: str, moment: dt.datetime) -> str:
    day = moment.astimezone(dt.UTC).date().isoformat()
    digest = hmac.new(key, f"{probe_id}|{day}".encode(), hashlib.sha256).hexdigest()
    return f"p-{day}-{digest[:16]}"


def to_hour(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceiling(moment: dt.datetime) -> dt.datetime:
    floor = to_hour(moment)
    if floor == moment or floor > dt.datetime.max.replace(tzinfo=dt.UTC) - _HOUR:
        return floor
    return floor + _HOUR


def public_body(body: bytes, alias: str, start: dt.datetime) -> bytes:
    """The measurement as sent, with the probe's id replaced and its start time coarsened."""
    document: dict[str, Any] = msgspec.json.decode(body)
    probe = document.get("probe")
    if isinstance(probe, dict) and probe.get("id") is not None:
        probe["id"] = alias
    document["start_time"] = to_hour(start).isoformat().replace("+00:00", "Z")
    return msgspec.json.encode(document)
