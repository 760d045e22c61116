"""Per-item checks of an ingest batch: pure, so every hostile item can be tried without I/O.

Each raw item becomes either ``Valid`` (the measurement, its canonical bytes and any time
flags) or ``Invalid`` with a reason a probe operator can act on. The wire model itself is
``probe.model``; this module adds only what depends on who sent the item and when.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from probe import model

FLAG_FUTURE: Final = "future"
FLAG_PAST: Final = "past"
# A service the collector's target lists do not name: stored, but neither rolled up nor
# a metrics label, so a probe cannot grow either without bound by inventing names.
FLAG_UNKNOWN_SERVICE: Final = "unknown_service"
UNCOUNTED: Final = frozenset({FLAG_FUTURE, FLAG_UNKNOWN_SERVICE})


class _IdOnly(msgspec.Struct):
    """Just enough of an invalid item to tell the probe which one it was."""

    id: str


_id_decoder: Final = msgspec.json.Decoder(_IdOnly)


@dataclass(frozen=True)
class TimeWindow:
    """How far a measurement's start may lie from the collector's clock before it is flagged."""

    max_future: dt.timedelta
    max_past: dt.timedelta


@dataclass(frozen=True)
class Valid:
    index: int
    measurement: model.Measurement
    body: bytes  # as the probe sent it: it decodes strictly to ``measurement``
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Invalid:
    index: int
    id: str | None
    reason: str
    kind: str  # one of metrics.REJECT_REASONS: a bounded label


def time_flags(start: dt.datetime, now: dt.datetime, window: TimeWindow) -> tuple[str, ...]:
    if start - now > window.max_future:
        return (FLAG_FUTURE,)
    if now - start > window.max_past:
        return (FLAG_PAST,)
    return ()


def item_id(raw: bytes) -> str | None:
    try:
        found = _id_decoder.decode(raw).id
    except (msgspec.DecodeError, RecursionError):
        return None
    return found[:64]


def _decode(raw: bytes) -> model.Measurement | tuple[str, str]:
    """The measurement, or (kind, reason) saying why there is none."""
    try:
        return model.decode(raw)
    except RecursionError:
        return "too_deep", "JSON nested too deeply"
    except msgspec.ValidationError as exc:
        return "invalid_measurement", f"invalid measurement: {exc}"
    except msgspec.DecodeError as exc:
        return "invalid_json", f"invalid JSON: {exc}"


def check_item(
    index: int, raw: bytes, probe_id: str, now: dt.datetime, window: TimeWindow
) -> Valid | Invalid:
    decoded = _decode(raw)
    if isinstance(decoded, tuple):
        kind, reason = decoded
        return Invalid(index, item_id(raw), reason, kind)
    return _judge(index, decoded, raw, probe_id, now, window)


def _judge(
    index: int,
    decoded: model.Measurement,
    raw: bytes,
    probe_id: str,
    now: dt.datetime,
    window: TimeWindow,
) -> Valid | Invalid:
    claimed = decoded.probe.id
    if claimed is not None and claimed != probe_id:
        reason = f"probe.id {claimed!r} is not the probe this token belongs to"
        return Invalid(index, str(decoded.id), reason, "wrong_probe")
    flags = time_flags(decoded.start_time, now, window)
    return Valid(index, decoded, raw, flags)


_list_decoder: Final = msgspec.json.Decoder(list[model.Measurement])


def check_array(
    data: bytes, raws: Sequence[msgspec.Raw], probe_id: str, now: dt.datetime, window: TimeWindow
) -> list[Valid | Invalid]:
    """Every item of a JSON array batch, checked as ``check_item`` would one by one.

    The common case, a batch whose items all decode, costs one decode of the whole array;
    any failure (even a single bad item) falls back to the per-item path, so results and
    reasons are exactly those of ``check_item``.
    """
    try:
        decoded = _list_decoder.decode(data)
        for measurement in decoded:
            model.check_invariants(measurement)
    except (msgspec.DecodeError, RecursionError):
        decoded = []
    if len(decoded) != len(raws):
        return [check_item(i, bytes(raw), probe_id, now, window) for i, raw in enumerate(raws)]
    return [
        _judge(i, measurement, bytes(raw), probe_id, now, window)
        for i, (measurement, raw) in enumerate(zip(decoded, raws, strict=True))
    ]


def flag_unknown_services(
    checked: Sequence[Valid | Invalid], services: frozenset[str]
) -> list[Valid | Invalid]:
    """Each valid item whose service the collector does not serve gets the flag."""
    return [
        dataclasses.replace(item, flags=(*item.flags, FLAG_UNKNOWN_SERVICE))
        if isinstance(item, Valid) and item.measurement.service not in services
        else item
        for item in checked
    ]
