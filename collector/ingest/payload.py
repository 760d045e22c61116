"""From an ingest request body to a list of undecoded items, within limits.

Nothing here trusts the body: gzip is inflated in bounded steps so a small bomb cannot
allocate more than the decompressed limit, the framing (JSON array or NDJSON) is checked
before any item is looked at, and items stay raw so that one bad item is rejected alone.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec

from collector.api.errors import APIError

Framing = Literal["array", "ndjson"]
_CHUNK: Final = 256 * 1024
_INPUT_CHUNK: Final = 64 * 1024
MAX_GZIP_MEMBERS: Final = 64  # a probe sends one; concatenated uploads stay possible
_NDJSON_TYPES: Final = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
_JSON_TYPES: Final = frozenset({"application/json", ""})
_SPARE_LINES: Final = 16


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_decompressed_bytes: int
    max_batch_items: int


def _too_large(what: str, limit: int) -> APIError:
    return APIError(413, "payload_too_large", f"{what} exceeds the limit", limit=limit)


def gunzip(body: bytes, limit: int, max_members: int = MAX_GZIP_MEMBERS) -> bytes:
    """Inflate gzip (one or more members) without ever holding more than ``limit`` bytes.

    The input is fed in bounded slices of a memoryview, so each member costs its own
    length and nothing more (re-slicing the remaining body per member made a body of many
    tiny members quadratic); the member count is bounded too.
    """
    out = bytearray()
    view = memoryview(body)
    position = members = 0
    while position < len(view):
        members += 1
        if members > max_members:
            raise _too_large("number of gzip members", max_members)
        try:
            position = _inflate_member(view, position, out, limit)
        except zlib.error as exc:
            raise APIError(400, "bad_gzip", f"invalid gzip data: {exc}") from exc
    return bytes(out)


def _inflate_member(view: memoryview, position: int, out: bytearray, limit: int) -> int:
    """Inflate the member starting at ``position`` into ``out``; where the next one starts."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    while not inflater.eof:
        if position >= len(view):
            out += inflater.flush()  # at most one window (32 KiB) is still held
            _check_size(out, limit)
            if not inflater.eof:
                raise APIError(400, "bad_gzip", "gzip stream is truncated")
            break
        piece = view[position : position + _INPUT_CHUNK]
        data: bytes | memoryview = piece
        while True:
            out += inflater.decompress(data, min(_CHUNK, limit + 1 - len(out)))
            _check_size(out, limit)
            if inflater.eof or not inflater.unconsumed_tail:
                break
            data = inflater.unconsumed_tail
        # At the member's end zlib keeps the rest in both unused_data and unconsumed_tail.
        left = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        position += len(piece) - len(left)
    return position


def _check_size(out: bytearray, limit: int) -> None:
    if len(out) > limit:
        raise _too_large("decompressed body", limit)


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    coding = (encoding or "identity").strip().lower()
    if coding in ("gzip", "x-gzip"):
        return gunzip(body, limit)
    if coding == "identity":
        if len(body) > limit:
            raise _too_large("body", limit)
        return body
    raise APIError(
        415, "unsupported_encoding", f"Content-Encoding {encoding!r} not supported; use gzip"
    )


def framing_of(content_type: str, data: bytes) -> Framing:
    if content_type in _NDJSON_TYPES:
        return "ndjson"
    if content_type not in _JSON_TYPES:
        raise APIError(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type!r} not supported; "
            "send application/json (an array) or application/x-ndjson",
        )
    return "array" if data.lstrip()[:1] == b"[" else "ndjson"


@functools.cache
def _bounded_array(max_items: int) -> msgspec.json.Decoder[Any]:
    """A decoder that stops at item ``max_items + 1`` instead of building a list first.

    An array-like struct with ``max_items`` optional fields: msgspec refuses the first
    element past the last field as it parses, so 16 MiB of ``[0,0,…]`` costs one failed
    pass and no millions of objects. A present item is never empty, so empty means absent.
    """
    fields = [(f"i{i}", msgspec.Raw, msgspec.Raw(b"")) for i in range(max_items)]
    batch = msgspec.defstruct("Batch", fields, array_like=True, forbid_unknown_fields=True)
    return msgspec.json.Decoder(batch)


def split_array(data: bytes, max_items: int) -> list[msgspec.Raw]:
    try:
        batch = _bounded_array(max_items).decode(data)
    except RecursionError as exc:
        raise APIError(400, "bad_json", "JSON nested too deeply") from exc
    except msgspec.ValidationError as exc:
        if "of at most length" in str(exc) or "length <=" in str(exc):
            raise _too_large("number of items in the batch", max_items) from exc
        raise APIError(400, "bad_json", f"expected a JSON array of measurements: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise APIError(400, "bad_json", f"invalid JSON: {exc}") from exc
    # Fields fill in order and a present item is never empty: the items end at the first
    # empty field (read up to there only, not all max_items fields every batch).
    return list(itertools.takewhile(len, msgspec.structs.astuple(batch)))


def split_ndjson(data: bytes, max_items: int) -> list[msgspec.Raw]:
    """Lines with content; blank lines are counted (in C) first, so they cost no objects."""
    if data.count(b"\n") > 2 * max_items + _SPARE_LINES:
        raise _too_large("number of lines in the batch", 2 * max_items + _SPARE_LINES)
    items: list[msgspec.Raw] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        if len(items) == max_items:
            raise _too_large("number of items in the batch", max_items)
        items.append(msgspec.Raw(line))
    return items


@dataclass(frozen=True)
class Batch:
    """A batch's items, undecoded, with the (decompressed) data they were split from."""

    data: bytes
    framing: Framing
    items: list[msgspec.Raw]


def read_batch(body: bytes, content_type: str, encoding: str | None, limits: Limits) -> Batch:
    """The batch; raises APIError (4xx) for anything but a usable batch."""
    data = decode_content(body, encoding, limits.max_decompressed_bytes)
    framing = framing_of(content_type, data)
    if framing == "ndjson":
        items = split_ndjson(data, limits.max_batch_items)
    else:
        items = split_array(data, limits.max_batch_items)
    if len(items) > limits.max_batch_items:
        raise _too_large("number of items in the batch", limits.max_batch_items)
    if not items:
        raise APIError(400, "empty_batch", "the batch holds no measurements")
    return Batch(data, framing, items)


def split_batch(
    body: bytes, content_type: str, encoding: str | None, limits: Limits
) -> list[msgspec.Raw]:
    """The batch's items, undecoded; raises APIError (4xx) for anything but a usable batch."""
    return read_batch(body, content_type, encoding, limits).items
